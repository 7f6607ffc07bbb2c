// Command oidcop runs zitadel/oidc's OpenID provider (package op: discovery,
// JWKS, authorization code with PKCE, and the OAuth 2.0 Device Authorization
// Grant of RFC 8628) with the library's example storage, login and
// device-approval pages (example/server), for gateway/ssotest. It is the
// provider lex login --device is tested against: Ory Hydra v2.3.0, the
// provider of the code-flow test, has no device authorization endpoint.
//
// The wrapper is the smallest the example needs to be a firm's provider:
// it listens on 127.0.0.1 only, registers lex as a public client allowed
// the device grant, reads the people from a JSON file whose entries also
// carry the authentication methods (amr) their sign-in reports (the
// example's device page checks only a password: "otp" stands for the
// second factor the firm's real provider would ask for), and lets the test
// shorten the device code's lifetime.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT)")
	users := flag.String("users", "", "JSON file: {\"<id>\": {\"ID\", \"Username\", \"Password\", \"AMR\": [...]}}")
	clientID := flag.String("client", "lex", "the public client allowed the device grant and the code flow")
	deviceTTL := flag.Duration("device-code-lifetime", 0, "how long a device code may be approved (0: the example's 5 minutes)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(*port, *users, *clientID, *deviceTTL, log); err != nil {
		log.Error("oidcop", "error", err)
		os.Exit(1)
	}
}

func run(port int, usersFile, clientID string, deviceTTL time.Duration, log *slog.Logger) error {
	if port == 0 || usersFile == "" {
		return fmt.Errorf("-port and -users are required")
	}
	store, err := storage.StoreFromFile(usersFile)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	var amr map[string]struct{ AMR []string }
	b, err := os.ReadFile(usersFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &amr); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	byName := map[string][]string{}
	for id, u := range amr {
		if su := store.GetUserByID(id); su != nil {
			byName[su.Username] = u.AMR
		}
	}
	storage.RegisterClients(storage.NativeClient(clientID, "http://127.0.0.1/callback"))
	st := &firmStorage{Storage: storage.NewStorage(store), store: store, amr: byName, clientID: clientID, deviceTTL: deviceTTL}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	issuer := "http://" + addr
	router := exampleop.SetupServer(issuer, st, log, false)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("serving", "issuer", issuer)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// firmStorage is the example's in-memory storage with the firm's rules.
type firmStorage struct {
	*storage.Storage
	store     storage.UserStore
	amr       map[string][]string // by username
	clientID  string
	deviceTTL time.Duration
}

// deviceClient is lex: the example's native (public, PKCE) client, also
// allowed the device grant.
type deviceClient struct{ op.Client }

func (c deviceClient) GrantTypes() []oidc.GrantType {
	return append(slices.Clone(c.Client.GrantTypes()), oidc.GrantTypeDeviceCode)
}

func (s *firmStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != s.clientID {
		return c, err
	}
	return deviceClient{c}, nil
}

// StoreDeviceAuthorization shortens the code's lifetime when the test asks.
func (s *firmStorage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if s.deviceTTL > 0 {
		expires = time.Now().Add(s.deviceTTL)
	}
	return s.Storage.StoreDeviceAuthorization(ctx, clientID, deviceCode, userCode, expires, scopes)
}

// CompleteDeviceAuthorization records, before the example marks the code
// approved, the subject (the user's ID, not the name typed) and how the
// person authenticated, which the ID token reports as amr. The token
// endpoint reads them only once the storage, under its lock, says the code
// is done, which happens after these writes.
func (s *firmStorage) CompleteDeviceAuthorization(ctx context.Context, userCode, username string) error {
	u := s.store.GetUserByUsername(username)
	if u == nil {
		return fmt.Errorf("no user %q", username)
	}
	state, err := s.GetDeviceAuthorizationByUserCode(ctx, userCode)
	if err != nil {
		return err
	}
	state.AMR = s.amr[username]
	state.AuthTime = time.Now()
	return s.Storage.CompleteDeviceAuthorization(ctx, userCode, u.ID)
}
