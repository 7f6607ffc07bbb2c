package certs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "harbor-ca")
	devDir := filepath.Join(dir, "dev")
	aliceCert, aliceKey := filepath.Join(dir, "out", "alice.crt"), filepath.Join(dir, "out", "alice.key")

	// Steps run in order: later ones use what earlier ones wrote.
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string
		wantFiles  []string
		wantNoFile string
	}{
		{name: "no args", args: nil, code: 2, stderr: []string{"usage: lexgate certs <command>"}},
		{name: "help", args: []string{"-h"}, code: 0, stdout: []string{"issue"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`, "usage:"}},
		{name: "dev help", args: []string{"dev", "-h"}, code: 0, stderr: []string{"--out DIR", "-ttl"}},
		{name: "dev without out", args: []string{"dev"}, code: 2, stderr: []string{"--out is required"}},
		{name: "dev bad flag", args: []string{"dev", "--bogus"}, code: 2, stderr: []string{"bogus"}},
		{name: "dev bad ttl", args: []string{"dev", "--out", devDir, "--ttl", "-1h"}, code: 2, stderr: []string{"--ttl must be positive"}},
		{name: "dev extra arg", args: []string{"dev", "--out", devDir, "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}},
		{name: "dev", args: []string{"dev", "--out", devDir, "--ttl", "2h"}, code: 0,
			stdout:    []string{"wrote " + filepath.Join(devDir, "harbor-law.example", "ca.key"), "gateway.crt", "site-review-team.key", "gateway SVID: spiffe://harbor-law.example/gateway"},
			wantFiles: []string{filepath.Join(devDir, "manila-lpo.example", "bundle.pem")}},
		{name: "dev again", args: []string{"dev", "--out", devDir}, code: 0, stdout: []string{"paralegal-alice.crt"}},
		{name: "ca missing flags", args: []string{"ca", "--out", caDir}, code: 2, stderr: []string{"--trust-domain is required"}},
		{name: "ca bad trust domain", args: []string{"ca", "--trust-domain", "Harbor Law", "--out", caDir}, code: 2, stderr: []string{`--trust-domain "Harbor Law"`}},
		{name: "ca", args: []string{"ca", "--trust-domain", "harbor-law.example", "--out", caDir}, code: 0,
			stdout:    []string{"wrote " + filepath.Join(caDir, "ca.crt"), "bundle.pem"},
			wantFiles: []string{filepath.Join(caDir, "ca.key"), filepath.Join(caDir, "bundle.pem")}},
		{name: "ca refuses to overwrite", args: []string{"ca", "--trust-domain", "harbor-law.example", "--out", caDir}, code: 1, stderr: []string{"certs: ", "already exists"}},
		{name: "issue missing flags", args: []string{"issue", "--ca", caDir}, code: 2, stderr: []string{"--id is required"}},
		{name: "issue bad id", args: []string{"issue", "--ca", caDir, "--id", "https://x/y", "--cert", aliceCert, "--key", aliceKey}, code: 2, stderr: []string{"not a SPIFFE ID"}},
		{name: "issue other trust domain", args: []string{"issue", "--ca", caDir, "--id", "spiffe://manila-lpo.example/site/x", "--cert", aliceCert, "--key", aliceKey}, code: 1,
			stderr: []string{"certs: spiffe://manila-lpo.example/site/x is not in trust domain harbor-law.example"}, wantNoFile: aliceKey},
		{name: "issue no CA", args: []string{"issue", "--ca", filepath.Join(dir, "nope"), "--id", "spiffe://harbor-law.example/x", "--cert", aliceCert, "--key", aliceKey}, code: 1,
			stderr: []string{"certs: ", "nope"}, wantNoFile: aliceKey},
		{name: "issue", args: []string{"issue", "--ca", caDir, "--id", "spiffe://harbor-law.example/paralegal/alice", "--cert", aliceCert, "--key", aliceKey, "--ttl", "1h"}, code: 0,
			stdout: []string{"wrote " + aliceCert, "issued spiffe://harbor-law.example/paralegal/alice"}, wantFiles: []string{aliceCert, aliceKey}},
		{name: "issue with dev CA", args: []string{"issue", "--ca", filepath.Join(devDir, "manila-lpo.example"), "--id", "spiffe://manila-lpo.example/site/bob", "--cert", filepath.Join(dir, "bob.crt"), "--key", filepath.Join(dir, "bob.key")}, code: 0,
			stdout: []string{"issued spiffe://manila-lpo.example/site/bob"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := Command(t.Context(), tt.args, &stdout, &stderr)
		if code != tt.code {
			t.Errorf("%s: exit code %d, want %d\nstdout: %s\nstderr: %s", tt.name, code, tt.code, &stdout, &stderr)
		}
		for _, s := range tt.stdout {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%s: stdout %q does not contain %q", tt.name, &stdout, s)
			}
		}
		for _, s := range tt.stderr {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("%s: stderr %q does not contain %q", tt.name, &stderr, s)
			}
		}
		for _, f := range tt.wantFiles {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		if tt.wantNoFile != "" {
			if _, err := os.Stat(tt.wantNoFile); err == nil {
				t.Errorf("%s: %s was written", tt.name, tt.wantNoFile)
			}
		}
	}

	svid, err := LoadSVID(aliceCert, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := x509svid.Verify(svid.Certificates, ca.Bundle()); err != nil || id.String() != "spiffe://harbor-law.example/paralegal/alice" {
		t.Errorf("issued SVID: Verify = %v, %v", id, err)
	}
	if got := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); got != time.Hour {
		t.Errorf("issued SVID lives %v, want --ttl 1h", got)
	}
	checkPerm(t, aliceKey, 0o600)
}
