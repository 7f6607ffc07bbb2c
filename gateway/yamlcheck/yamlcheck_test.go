package yamlcheck

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name  string        `yaml:"name"`
	Every time.Duration `yaml:"every"`
}

type embedded struct {
	Extra string `yaml:"extra"`
}

type config struct {
	Listen   string            `yaml:"listen"`
	Store    inner             `yaml:"store"`
	Accounts []inner           `yaml:"accounts"`
	ByName   map[string]inner  `yaml:"by_name"`
	Bundles  map[string]string `yaml:"bundles"`
	Ptr      *inner            `yaml:"ptr"`
	Hidden   string            `yaml:"-"`
	Plain    int
	embedded `yaml:",inline"`
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // each error's text, in order
	}{
		{"clean", "listen: x\nstore: {name: a, every: 1s}\naccounts: [{name: b}]\nbundles: {a.example: f}\nplain: 3\nextra: e\n", nil},
		{"typo at the top", "listen: x\nstroe:\n  name: a\n", []string{`c.yaml:2: unknown key "stroe" (did you mean "store"?)`}},
		{"typo nested", "store:\n  nmae: a\n", []string{`c.yaml:2: unknown key "store.nmae" (did you mean "store.name"?)`}},
		{"no suggestion", "listen: x\nwhatever: 1\n", []string{`c.yaml:2: unknown key "whatever"`}},
		{"in a list", "accounts:\n  - name: a\n  - naem: b\n", []string{`c.yaml:3: unknown key "accounts[1].naem" (did you mean "accounts[1].name"?)`}},
		{"in a map of structs", "by_name:\n  x:\n    evrey: 1s\n", []string{`c.yaml:3: unknown key "by_name.x.evrey" (did you mean "by_name.x.every"?)`}},
		{"map keys are free", "bundles:\n  anything.example: f\n", nil},
		{"pointer", "ptr:\n  nam: a\n", []string{`c.yaml:2: unknown key "ptr.nam" (did you mean "ptr.name"?)`}},
		{"dash field", "hidden: x\n", []string{`c.yaml:1: unknown key "hidden"`}},
		{"several", "lisen: x\nstroe: {}\n", []string{`c.yaml:1: unknown key "lisen" (did you mean "listen"?)`, `c.yaml:2: unknown key "stroe" (did you mean "store"?)`}},
		{"merge and alias", "base: &b {name: a, nme: b}\nstore:\n  <<: *b\n", []string{`c.yaml:1: unknown key "base"`, `c.yaml:1: unknown key "store.nme" (did you mean "store.name"?)`}},
		{"not yaml", "listen: [\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check("c.yaml", []byte(tc.doc), &config{})
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			var ke *KeyError
			if tc.want != nil && !errors.As(err, &ke) {
				t.Errorf("error %v is not a *KeyError", err)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"store", "store", 0}, {"stroe", "store", 1}, {"stor", "store", 1}, {"listen", "listne", 1}, {"listen", "lisent", 2}, {"abc", "xyz", 3}, {"", "ab", 2}} {
		if got := distance(tc.a, tc.b); got != tc.d {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"listen: x\nstroe: {}\n", "a: &a [*a]\n", "accounts: [{naem: 1}]\n", "<<: {x: 1}\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		err := Check("f.yaml", []byte(doc), &config{})
		var ke *KeyError
		if err != nil && !errors.As(err, &ke) {
			t.Fatalf("error %v is not a *KeyError", err)
		}
	})
}
