package cli

import (
	"encoding/base64"
	"testing"
)

// FuzzTokenNonce: tokenNonce reads any bytes without panicking and finds
// the nonce of a well-formed token.
func FuzzTokenNonce(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	f.Add("h." + enc([]byte(`{"nonce":"abc","sub":"alice"}`)) + ".s")
	f.Add("a.b")
	f.Add("..")
	f.Add("h." + enc([]byte(`{"nonce":7}`)) + ".s")
	f.Fuzz(func(t *testing.T, jwt string) {
		tokenNonce(jwt)
	})
}

func TestTokenNonce(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct{ jwt, want string }{
		{"h." + enc([]byte(`{"nonce":"abc","sub":"alice"}`)) + ".s", "abc"},
		{"h." + enc([]byte(`{"sub":"alice"}`)) + ".s", ""},
		{"h.!!!.s", ""},
		{"only.two", ""},
		{"h." + enc([]byte(`{"nonce":7}`)) + ".s", ""},
	} {
		if got := tokenNonce(tc.jwt); got != tc.want {
			t.Errorf("tokenNonce(%q) = %q, want %q", tc.jwt, got, tc.want)
		}
	}
}
