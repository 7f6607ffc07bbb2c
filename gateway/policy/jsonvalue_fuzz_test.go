package policy

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/lexgate/lexgate/policies"
)

// FuzzDecodeJSON: decodeJSON reads valid JSON as decodeValue (encoding/json
// and OPA's conversion) does, with and without shared strings, and refuses
// what decodeValue refuses.
func FuzzDecodeJSON(f *testing.F) {
	for _, name := range []string{"matters", "organisations", "jurisdictions"} {
		b, _ := fs.ReadFile(policies.FS, "data/"+name+".json")
		f.Add(b)
	}
	for _, s := range []string{`{"a":1,"a":2}`, `"\u00e9\ud83d\ude00\/"`, "\"\xff\"", `[1e400, -0, 1.50, 12345678901234567890]`,
		`{}`, `[]`, ` [ true , false , null ] `, strings.Repeat("[", 10001) + strings.Repeat("]", 10001), `{"x": {"y": [[]]}}`, `01`, `[1,]`, `"a\"b"`, `1 2`} {
		f.Add([]byte(s))
	}
	strs := &terms{m: map[string]*ast.Term{"a": ast.StringTerm("a"), "client": ast.StringTerm("client")}}
	f.Fuzz(func(t *testing.T, text []byte) {
		want, wantErr := decodeValue(text)
		for _, c := range []*terms{nil, strs} {
			got, err := decodeJSON(text, c)
			if !json.Valid(text) {
				continue // decodeJSON may read some invalid JSON; the store holds only valid JSON
			}
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%q: error %v, decodeValue's %v", text, err, wantErr)
			}
			if err == nil && ast.Compare(got, want) != 0 {
				t.Fatalf("%q: %v, decodeValue's %v", text, got, want)
			}
		}
	})
}
