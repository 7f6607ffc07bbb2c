package policy_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

func Example() {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Config{
		FS:     policies.FS,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	d, err := eng.Decide(ctx, policy.Input{
		Action:       "send",
		Time:         time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
		Source:       policy.Party{ID: "spiffe://harbor-law.example/paralegal/alice"},
		Destinations: []policy.Party{{ID: "spiffe://manila-lpo.example/site/review-team"}},
		Bundle:       &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"health"}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("allow:", d.Allow)
	for _, r := range d.Reasons {
		fmt.Printf("%s: %s\n", r.Code, r.Message)
	}
	// Output:
	// allow: false
	// hipaa.no_baa: manila-lpo.example cannot receive health data from harbor-law.example without a Business Associate Agreement (BAA): no BAA between them is on file
}

func ExampleCheck() {
	broken := mapFS(map[string]string{
		"lexgate.rego": "package lexgate\n\ndecision := http.send({\"method\": \"GET\", \"url\": \"https://example.com\"})\n",
	})
	for _, err := range policy.Check(context.Background(), broken) {
		fmt.Println(err)
	}
	// Output:
	// policy: lexgate.rego:3: rego_type_error: builtin http.send is not allowed in lexgate policies: it reaches the network
}
