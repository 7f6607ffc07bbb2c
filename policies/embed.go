// Package policies holds lexgate's default policy: the Rego rules in this
// directory, their tests, and the contracts in data/ (organisations and the
// agreements between them). See README.md for the input document the rules
// read and the data format a security team edits.
//
// The gateway runs on these embedded defaults unless its configuration names
// a policy directory. Test the policy with the stock OPA CLI:
//
//	go tool opa test policies/
//	go tool opa fmt -l policies/
package policies

import "embed"

// FS is the default policy set: every .rego file of this directory (tests
// included; the engine skips *_test.rego) and the JSON data under data/, at
// the same paths as in the source tree. Pass it as policy.Config.FS.
//
//go:embed *.rego data/*.json
var FS embed.FS
