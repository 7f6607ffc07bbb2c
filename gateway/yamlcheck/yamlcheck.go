// Package yamlcheck finds the keys of a YAML document that the Go struct it is
// decoded into does not know, with the line each is on and the known key it most
// likely misspells:
//
//	lexgate.yaml:7: unknown key "stroe" (did you mean "store"?)
//
// yaml.v3's strict decoding (KnownFields) already refuses such keys, but its
// message ("field stroe not found in type gateway.Config") names a Go type, not
// the key the user meant. Both lexgate's and lex's config loaders run [Check]
// before decoding. It is a leaf package: it imports no other lexgate package.
package yamlcheck

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KeyError is one unknown key.
type KeyError struct {
	File string // the file, as given to Check
	Line int    // 1-based
	// Path is the key's place in the document, e.g. "sftp.accounts[0].nmae".
	Path string
	Key  string
	// Suggestion is the path of the known key at that place the unknown one
	// most likely misspells, or "" when none is close.
	Suggestion string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "%s:", e.File)
	}
	fmt.Fprintf(&b, "%d: unknown key %q", e.Line, e.Path)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggestion)
	}
	return b.String()
}

// Check parses data as YAML and reports every mapping key that v's type (a
// struct, or a pointer to one) has no field for, as [*KeyError]s joined with
// [errors.Join]. A document that does not parse is not reported here: the
// decoder that follows reports it with its own position. Fields tagged
// `yaml:"-"` are unknown keys; `yaml:",inline"` structs are looked into.
func Check(file string, data []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	w := walker{file: file, seen: map[*yaml.Node]bool{}}
	w.node(&doc, reflect.TypeOf(v), "")
	return errors.Join(w.errs...)
}

type walker struct {
	file string
	errs []error
	seen map[*yaml.Node]bool // aliases already followed (a document may loop)
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

func (w *walker) node(n *yaml.Node, t reflect.Type, path string) {
	if n == nil || t == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshaler) {
			return
		}
		t = t.Elem()
	}
	if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.node(c, t, path)
		}
		return
	case yaml.AliasNode:
		if w.seen[n.Alias] {
			return
		}
		w.seen[n.Alias] = true
		w.node(n.Alias, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.MappingNode {
			w.mapping(n, t, path)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.node(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			w.node(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	fields := fieldsOf(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || k.Value == "<<" {
			w.node(v, t, path)
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			e := &KeyError{File: w.file, Line: k.Line, Path: join(path, k.Value), Key: k.Value}
			if s := closest(k.Value, fields); s != "" {
				e.Suggestion = join(path, s)
			}
			w.errs = append(w.errs, e)
			continue
		}
		w.node(v, ft, join(path, k.Value))
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf maps each YAML key of struct type t to its field's type, following
// yaml.v3's rules: the tag's name, else the field's name in lower case;
// unexported and "-" fields are not keys; inline structs add their keys.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					m[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// closest returns the known key nearest to key by edit distance, if it is near
// enough to be a likely typo: at most a third of the key's length (at least 1,
// at most 3) edits away, a transposition counting as one.
func closest(key string, known map[string]reflect.Type) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names) // ties go to the first name, so the answer is stable
	limit := min(max(len(key)/3, 1), 3)
	best, bestD := "", limit+1
	for _, k := range names {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b (Levenshtein
// plus adjacent transpositions), compared byte by byte.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
