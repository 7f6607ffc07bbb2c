package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/policy"
)

// Explain asks the gateway what its policy would decide for req.
func (c *Client) Explain(ctx context.Context, req api.ExplainRequest) (*api.ExplainResponse, error) {
	var out api.ExplainResponse
	if err := c.call(ctx, "POST", api.PathPolicyExplain, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// errPolicyWouldRefuse makes "lex policy explain" exit with ExitRefused
// after printing the refusal.
var errPolicyWouldRefuse = errors.New("the policy would refuse")

func runPolicyExplain(e *env, args []string) error {
	fset := newFlagSet("policy explain")
	var to, labels, regions listFlag
	var size sizeFlag
	from := fset.String("from", "", "")
	fset.Var(&to, "to", "")
	fset.Var(&labels, "label", "")
	fset.Var(&regions, "region", "")
	fset.Var(&size, "size", "")
	matter := fset.String("matter", "", "")
	files := fset.Int("files", 0, "")
	action := fset.String("action", "send", "")
	at := fset.String("at", "", "")
	local := fset.String("local", "", "")
	jsonOut := fset.Bool("json", false, "")
	pos, err := parseArgs(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *from == "" {
		return usagef("--from is required")
	}
	req := api.ExplainRequest{Action: *action, From: *from, To: to, Matter: *matter, Labels: labels,
		Regions: regions, Size: int64(size), FileCount: *files}
	if *at != "" {
		if req.At, err = parseWhen(*at); err != nil {
			return usagef("--at %q: want YYYY-MM-DD or RFC 3339", *at)
		}
	}
	var resp *api.ExplainResponse
	if *local != "" {
		resp, err = explainLocal(e.ctx, *local, req)
	} else {
		resp, err = explainRemote(e, req)
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		err = writeJSON(e.stdout, resp)
	} else {
		printExplanation(e.stdout, req, resp)
	}
	if err == nil && !resp.Allow {
		return errPolicyWouldRefuse
	}
	return err
}

// parseWhen reads YYYY-MM-DD (midnight UTC) or RFC 3339.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func explainRemote(e *env, req api.ExplainRequest) (*api.ExplainResponse, error) {
	_, c, err := e.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Explain(e.ctx, req)
}

// explainLocal decides req with the policy set in dir, as the gateway would,
// on the interpreter: explanations never need the compiled form, which
// would only cost its compilation here.
func explainLocal(ctx context.Context, dir string, req api.ExplainRequest) (*api.ExplainResponse, error) {
	eng, err := policy.New(ctx, policy.Config{FS: os.DirFS(dir), Logger: slog.New(slog.DiscardHandler), Evaluator: policy.EvaluatorTopdown})
	if err != nil {
		return nil, inDir(dir, err)
	}
	defer eng.Close()
	in := policy.Input{Action: req.Action, Time: req.At, Source: policy.Party{ID: req.From},
		Bundle: &policy.Bundle{Matter: req.Matter, Labels: req.Labels, Regions: req.Regions, Size: req.Size, FileCount: req.FileCount}}
	for _, id := range append([]string{req.From}, req.To...) {
		if _, err := spiffeid.FromString(id); err != nil {
			return nil, usagef("%q is not a SPIFFE ID: %v", id, err)
		}
	}
	for _, id := range req.To {
		in.Destinations = append(in.Destinations, policy.Party{ID: id})
	}
	if in.Time.IsZero() {
		in.Time = time.Now().UTC()
	}
	d, err := eng.Decide(policy.Hypothetical(ctx), in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lex policy explain:", err)
	}
	resp := &api.ExplainResponse{DecisionID: d.ID, Allow: d.Allow, PolicyVersion: d.PolicyVersion, Reasons: []api.Reason{},
		Obligations: api.Obligations{RetentionDays: d.Obligations.RetentionDays, MaxDownloads: d.Obligations.MaxDownloads, ExpiresAt: d.Obligations.ExpiresAt}}
	for _, r := range d.Reasons {
		resp.Reasons = append(resp.Reasons, api.Reason{Code: r.Code, Message: r.Message})
	}
	if resp.Input, err = json.Marshal(eng.Enrich(in)); err != nil {
		return nil, err
	}
	return resp, nil
}

func printExplanation(w io.Writer, req api.ExplainRequest, r *api.ExplainResponse) {
	verdict := "ALLOWED"
	if !r.Allow {
		verdict = "REFUSED"
	}
	var in struct {
		Time time.Time `json:"time"`
	}
	_ = json.Unmarshal(r.Input, &in)
	fmt.Fprintf(w, "%s: %s from %s", verdict, req.Action, req.From)
	if len(req.To) > 0 {
		fmt.Fprintf(w, " to %s", strings.Join(req.To, ", "))
	}
	fmt.Fprintf(w, " at %s\n", in.Time.UTC().Format(time.RFC3339))
	if len(req.Labels) > 0 || len(req.Regions) > 0 || req.Matter != "" {
		fmt.Fprintf(w, "  bundle: matter %q, labels [%s], data subjects in [%s]\n", req.Matter, strings.Join(req.Labels, " "), strings.Join(req.Regions, " "))
	}
	for _, rs := range r.Reasons {
		fmt.Fprintf(w, "  - %s [%s]\n", rs.Message, rs.Code)
	}
	if r.Allow {
		o := r.Obligations
		fmt.Fprintf(w, "  obligations: keep %d days, at most %d downloads, expires %s\n", o.RetentionDays, o.MaxDownloads, o.ExpiresAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "policy %s, decision %s\n", r.PolicyVersion, r.DecisionID)
}
