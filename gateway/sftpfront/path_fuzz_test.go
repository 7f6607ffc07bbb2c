package sftpfront

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
)

// sftpClean is what pkg/sftp's request server does to every request path before a
// handler sees it (cleanPathWithBase with the start directory "/"). Symlink's
// target is the one path it passes on uncleaned.
func sftpClean(p string) string {
	p = path.Clean(p)
	if !path.IsAbs(p) {
		return path.Join("/", p)
	}
	return p
}

// FuzzSplit: whatever path a client sends, the virtual tree's elements are valid
// file names (never "", "." or ".."), joining them gives back the path the
// handler was given, and a path that was not cleaned is either refused or is
// already clean: splitting never resolves a path to somewhere its text does not
// say.
func FuzzSplit(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		clean := sftpClean(p)
		parts, err := split(clean)
		if err == nil {
			checkParts(t, clean, parts)
		}
		raw, rawErr := split(p)
		if rawErr != nil {
			return
		}
		checkParts(t, p, raw)
		if p != clean || err != nil || !slices.Equal(raw, parts) {
			t.Fatalf("split accepted the unclean path %q as %q; cleaned it is %q: %q, %v", p, raw, clean, parts, err)
		}
	})
}

func checkParts(t *testing.T, p string, parts []string) {
	t.Helper()
	if got := "/" + strings.Join(parts, "/"); got != p {
		t.Fatalf("split(%q) = %q, which joins to %q", p, parts, got)
	}
	for _, e := range parts {
		if err := api.ValidFileName(e); err != nil || e == "." || e == ".." || strings.ContainsAny(e, "/\\\x00") {
			t.Fatalf("split(%q) let through the element %q (%v)", p, e, err)
		}
	}
	if again, err := split("/" + strings.Join(parts, "/")); err != nil || !slices.Equal(again, parts) {
		t.Fatalf("split is not idempotent on %q: %q, %v", p, again, err)
	}
}

// FuzzResolveRecipient: an /outbox directory name resolves to the alias's
// configured ID, or to exactly the trust domain written before the first "+"
// and the path its other elements spell, in the canonical form of a SPIFFE ID;
// never to another trust domain, never with "." or ".." elements.
func FuzzResolveRecipient(f *testing.F) {
	aliases := map[string]string{
		"review-team": "spiffe://manila-lpo.example/site/review-team",
		"partners":    "spiffe://harbor-law.example/group/partners",
	}
	h := &handler{s: &Server{cfg: Config{Recipients: aliases}}}
	f.Fuzz(func(t *testing.T, name string) {
		id, ok := h.resolveRecipient(name)
		if !ok {
			if !id.IsZero() {
				t.Fatalf("resolveRecipient(%q) failed but returned %s", name, id)
			}
			if _, alias := aliases[name]; alias {
				t.Fatalf("the alias %q did not resolve", name)
			}
			return
		}
		if want, alias := aliases[name]; alias {
			if id.String() != want {
				t.Fatalf("alias %q resolved to %s, configured %s", name, id, want)
			}
			return
		}
		td, rest, _ := strings.Cut(name, "+")
		if id.TrustDomain().Name() != td {
			t.Fatalf("%q resolved to %s, in trust domain %q, not %q", name, id, id.TrustDomain().Name(), td)
		}
		if want := "spiffe://" + td + "/" + strings.ReplaceAll(rest, "+", "/"); id.String() != want {
			t.Fatalf("%q resolved to %s, not the canonical %s", name, id, want)
		}
		for _, e := range strings.Split(strings.TrimPrefix(id.Path(), "/"), "/") {
			if e == "" || e == "." || e == ".." {
				t.Fatalf("%q resolved to %s, with the path element %q", name, id, e)
			}
		}
	})
}
