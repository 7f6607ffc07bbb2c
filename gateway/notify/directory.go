package notify

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Directory says who is told by email: the address of each identity (a
// person's or a team's SPIFFE ID), the addresses of each group the
// notifier writes to (security, approvers, records), and what each
// organisation (trust domain) lets email carry. The firm syncs it from its
// directory; unknown keys are errors.
//
//	people:
//	  spiffe://harbor-law.example/paralegal/alice: alice@harbor-law.example
//	groups:
//	  security: [soc@harbor-law.example]
//	organisations:
//	  harbor-law.example: {include_matter: true}
type Directory struct {
	People        map[string]string           `yaml:"people"`
	Groups        map[string][]string         `yaml:"groups"`
	Organisations map[string]OrganisationRule `yaml:"organisations"`
}

// OrganisationRule is what an organisation lets notifications about its
// transfers carry outside the gateway.
type OrganisationRule struct {
	// IncludeMatter puts the matter number in email (default false: email
	// leaves the zero-trust perimeter).
	IncludeMatter bool `yaml:"include_matter"`
}

// ParseDirectory parses and checks a directory file's contents.
func ParseDirectory(b []byte) (*Directory, error) {
	var d Directory
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && err != io.EOF {
		return nil, fmt.Errorf("notify: directory: %w", err)
	}
	for id, addr := range d.People {
		if !strings.HasPrefix(id, "spiffe://") {
			return nil, fmt.Errorf("notify: directory: people: %q is not a SPIFFE ID", id)
		}
		if err := checkAddress(addr); err != nil {
			return nil, fmt.Errorf("notify: directory: people: %s: %w", id, err)
		}
	}
	for g, addrs := range d.Groups {
		for _, a := range addrs {
			if err := checkAddress(a); err != nil {
				return nil, fmt.Errorf("notify: directory: groups: %s: %w", g, err)
			}
		}
	}
	return &d, nil
}

// checkAddress accepts a bare address (no display name, no CR or LF).
func checkAddress(a string) error {
	p, err := mail.ParseAddress(a)
	if err != nil || p.Address != a || p.Name != "" {
		return fmt.Errorf("%q is not a bare email address", a)
	}
	return nil
}

// Address is id's email address, "" when it has none.
func (d *Directory) Address(id string) string {
	if d == nil {
		return ""
	}
	return d.People[id]
}

// Group lists the addresses of group.
func (d *Directory) Group(name string) []string {
	if d == nil {
		return nil
	}
	return d.Groups[name]
}

// IncludeMatter reports whether the organisation of SPIFFE ID id lets
// email carry matter numbers.
func (d *Directory) IncludeMatter(id string) bool {
	if d == nil {
		return false
	}
	td, _, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	return d.Organisations[td].IncludeMatter
}

// directoryFile reloads a directory file when it changes; a file that no
// longer parses keeps the last good directory.
type directoryFile struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	size int64
	dir  *Directory
}

func (f *directoryFile) get() (*Directory, error) {
	if f == nil || f.path == "" {
		return nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		if f.dir != nil {
			return f.dir, nil
		}
		return nil, fmt.Errorf("notify: directory: %w", err)
	}
	if f.dir != nil && st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.dir, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return f.dir, fmt.Errorf("notify: directory: %w", err)
	}
	d, err := ParseDirectory(b)
	if err != nil {
		return f.dir, fmt.Errorf("%w (keeping the last good directory)", err)
	}
	f.dir, f.mod, f.size = d, st.ModTime(), st.Size()
	return d, nil
}
