package policy

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// result is a decision as the policy returns it.
type result struct {
	Allow       bool
	Reasons     []Reason
	Obligations Obligations
	Notes       []Reason
}

// keepAST makes a prepared query return its results as they are, as
// ast.Value, rather than converted to Go maps and slices: parseResult
// reads the decision straight from the policy's value.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

// parseResult checks the shape of a decision document, an ast.Value (as
// the engine's query returns it) or its JSON form as Go values: allow must
// be a boolean, reasons a list of {code, message} with a code,
// obligations non-negative whole numbers and an RFC 3339 time (or "").
// Other fields are ignored, and null counts as absent. A refusal without
// reasons gets one.
func parseResult(v any) (result, error) {
	val, ok := v.(ast.Value)
	if !ok {
		var err error
		if val, err = ast.InterfaceToValue(v); err != nil {
			return result{}, err
		}
	}
	obj, ok := val.(ast.Object)
	if !ok {
		return result{}, fmt.Errorf("the decision is a %s, not an object", ast.ValueName(val))
	}
	var res result
	switch allow := member(obj, "allow").(type) {
	case nil:
		return result{}, errors.New("allow is missing")
	case ast.Boolean:
		res.Allow = bool(allow)
	default:
		return result{}, fmt.Errorf("allow is a %s, not a boolean", ast.ValueName(allow))
	}
	reasons, err := parseReasons(member(obj, "reasons"))
	if err != nil {
		return result{}, err
	}
	res.Reasons = reasons
	if res.Notes, err = parseReasons(member(obj, "notes")); err != nil {
		return result{}, fmt.Errorf("notes: %w", err)
	} else if len(res.Notes) == 0 {
		res.Notes = nil
	}
	if res.Obligations, err = parseObligations(member(obj, "obligations")); err != nil {
		return result{}, err
	}
	if !res.Allow && len(res.Reasons) == 0 {
		res.Reasons = []Reason{{Code: CodeUndefined, Message: "the policy refused without giving a reason"}}
	}
	return res, nil
}

// member is obj[key], nil when absent or null.
func member(obj ast.Object, key string) ast.Value {
	t := obj.Get(ast.InternedTerm(key))
	if t == nil {
		return nil
	}
	if _, null := t.Value.(ast.Null); null {
		return nil
	}
	return t.Value
}

// parseReasons reads decision.reasons: a list of {code, message}.
func parseReasons(v ast.Value) ([]Reason, error) {
	if v == nil {
		return []Reason{}, nil
	}
	list, ok := v.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("reasons is a %s, not an array", ast.ValueName(v))
	}
	reasons := make([]Reason, list.Len())
	for i := range reasons {
		r, ok := list.Elem(i).Value.(ast.Object)
		if !ok {
			return nil, errors.New("a reason has no code")
		}
		code, err := stringField(r, "code")
		if err != nil {
			return nil, err
		}
		if code == "" {
			return nil, errors.New("a reason has no code")
		}
		msg, err := stringField(r, "message")
		if err != nil {
			return nil, err
		}
		reasons[i] = Reason{Code: code, Message: msg}
	}
	return reasons, nil
}

// parseObligations reads decision.obligations.
func parseObligations(v ast.Value) (Obligations, error) {
	var o Obligations
	if v == nil {
		return o, nil
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return o, fmt.Errorf("obligations is a %s, not an object", ast.ValueName(v))
	}
	var err error
	if o.RetentionDays, err = intField(obj, "retention_days"); err != nil {
		return o, err
	}
	if o.MaxDownloads, err = intField(obj, "max_downloads"); err != nil {
		return o, err
	}
	if o.RetentionDays < 0 || o.MaxDownloads < 0 {
		return o, errors.New("negative obligations")
	}
	expires, err := stringField(obj, "expires_at")
	if err != nil {
		return o, err
	}
	if expires != "" {
		if o.ExpiresAt, err = time.Parse(time.RFC3339Nano, expires); err != nil {
			return o, fmt.Errorf("expires_at: %w", err)
		}
	}
	return o, nil
}

// stringField is obj[key] as a string; "" when absent or null.
func stringField(obj ast.Object, key string) (string, error) {
	switch s := member(obj, key).(type) {
	case nil:
		return "", nil
	case ast.String:
		return string(s), nil
	default:
		return "", fmt.Errorf("%s is a %s, not a string", key, ast.ValueName(s))
	}
}

// intField is obj[key] as a whole number that fits an int; 0 when absent or null.
func intField(obj ast.Object, key string) (int, error) {
	switch n := member(obj, key).(type) {
	case nil:
		return 0, nil
	case ast.Number:
		i, ok := n.Int64()
		if !ok || i < math.MinInt || i > math.MaxInt {
			return 0, fmt.Errorf("%s is %s, not a whole number", key, n)
		}
		return int(i), nil
	default:
		return 0, fmt.Errorf("%s is a %s, not a number", key, ast.ValueName(n))
	}
}
