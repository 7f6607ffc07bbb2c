package policy

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decodeJSON decodes JSON text into the OPA value decodeValue gives, in one
// pass and sharing the strings strs holds (the organisations, labels, days
// and field names the policy data repeats; strs may be nil). The store
// decodes a matter this way for each decision that reads one it does not
// keep decoded: through encoding/json's Go values a matter of the benchmark
// took 6 µs and 126 allocations, this way half the time and, with the
// strings shared, some 75.
func decodeJSON(text []byte, strs *terms) (ast.Value, error) {
	d := jsonDecoder{b: text, strs: strs}
	t, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.skip(); d.i != len(d.b) {
		return nil, d.fail()
	}
	return t.Value, nil
}

// maxJSONDepth bounds the nesting decodeJSON follows, as encoding/json's.
const maxJSONDepth = 10000

type jsonDecoder struct {
	b    []byte
	i    int
	strs *terms
}

var errJSON = errors.New("policy: data store: malformed JSON")

func (d *jsonDecoder) fail() error { return errJSON }

// skip moves past white space.
func (d *jsonDecoder) skip() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) (*ast.Term, error) {
	if depth > maxJSONDepth {
		return nil, d.fail()
	}
	d.skip()
	if d.i >= len(d.b) {
		return nil, d.fail()
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return d.strs.str(s), nil
	case c == 't':
		return d.literal("true", ast.InternedTerm(true))
	case c == 'f':
		return d.literal("false", ast.InternedTerm(false))
	case c == 'n':
		return d.literal("null", ast.NullTerm())
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, d.fail()
}

func (d *jsonDecoder) literal(word string, t *ast.Term) (*ast.Term, error) {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return nil, d.fail()
	}
	d.i += len(word)
	return t, nil
}

func (d *jsonDecoder) number() (*ast.Term, error) {
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			d.i++
			continue
		}
		break
	}
	n := json.Number(d.b[start:d.i])
	if _, err := strconv.ParseFloat(string(n), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, d.fail()
	}
	v, err := ast.InterfaceToValue(n) // as decodeValue: interned small integers
	if err != nil {
		return nil, d.fail()
	}
	return ast.NewTerm(v), nil
}

// str reads a string: as is when it has no escapes and is valid UTF-8,
// through encoding/json otherwise (which also replaces invalid bytes).
func (d *jsonDecoder) str() (string, error) {
	start := d.i // the opening quote
	d.i++
	plain := true
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			raw := d.b[start+1 : d.i-1]
			if plain && utf8.Valid(raw) {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", d.fail()
			}
			return s, nil
		case c == '\\':
			plain = false
			d.i += 2
		case c < 0x20:
			return "", d.fail()
		default:
			d.i++
		}
	}
	return "", d.fail()
}

func (d *jsonDecoder) object(depth int) (*ast.Term, error) {
	d.i++ // {
	var fields [][2]*ast.Term
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return ast.NewTerm(ast.NewObject()), nil
	}
	for {
		d.skip()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.fail()
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skip()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.fail()
		}
		d.i++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		fields = append(fields, [2]*ast.Term{d.strs.str(k), v})
		d.skip()
		if d.i >= len(d.b) {
			return nil, d.fail()
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			o := ast.NewObjectWithCapacity(len(fields))
			for _, f := range fields {
				o.Insert(f[0], f[1]) // the last of equal keys wins, as in encoding/json
			}
			return ast.NewTerm(o), nil
		default:
			return nil, d.fail()
		}
	}
}

func (d *jsonDecoder) array(depth int) (*ast.Term, error) {
	d.i++ // [
	var elems []*ast.Term
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return ast.ArrayTerm(), nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		d.skip()
		if d.i >= len(d.b) {
			return nil, d.fail()
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return ast.ArrayTerm(elems...), nil
		default:
			return nil, d.fail()
		}
	}
}
