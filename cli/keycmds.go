package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var keygenCommand = &command{
	name:    "keygen",
	args:    "[--x25519] [--force] [--json]",
	summary: "generate your age identity (post-quantum by default) and print its recipient",
	help: `Writes a new age identity to the configured identity file (default identity.age
next to the configuration file), readable by you only (mode 0600), and prints its
public recipient. The key is hybrid post-quantum (ML-KEM-768 + X25519, "age1pq1…")
unless --x25519 asks for a classic X25519 key ("age1…"). Register it with
"lex register". keygen works without a gateway and without a configuration file.

  --x25519   generate a classic X25519 identity
  --force    replace an existing identity (what was encrypted to it is lost)
  --json     print {"identity": FILE, "recipient": …}`,
	run: runKeygen,
}

func runKeygen(e *env, args []string) error {
	fs := newFlagSet("keygen")
	x25519 := fs.Bool("x25519", false, "")
	force := fs.Bool("force", false, "")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg, err := e.loadConfig()
	if isNotExist(err) && e.configPath == "" {
		var path string
		if path, err = e.resolveConfigPath(); err == nil {
			cfg, err = defaultConfig(path)
		}
	}
	if err != nil {
		return err
	}
	content, recipient, err := generateIdentity(*x25519, time.Now())
	if err != nil {
		return err
	}
	if err := writeIdentityFile(cfg.Identity, content, *force); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(e.stdout, map[string]string{"identity": cfg.Identity, "recipient": recipient})
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", cfg.Identity)
	fmt.Fprintln(e.stdout, recipient)
	return nil
}

var registerCommand = &command{
	name:    "register",
	args:    "[--json]",
	summary: "register your age recipients with the gateway",
	help: `Reads your identity file and registers its public recipients for your SPIFFE ID,
replacing earlier ones. Senders encrypt to what is registered. The registration
is recorded in the gateway's audit log.`,
	run: runRegister,
}

func runRegister(e *env, args []string) error {
	fs := newFlagSet("register")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	ids, err := readIdentities(cfg.Identity)
	if err != nil {
		return err
	}
	recipients, err := identityRecipients(ids)
	if err != nil {
		return err
	}
	_, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.RegisterKeys(e.ctx, recipients); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if *jsonOut {
		return writeJSON(e.stdout, map[string]any{"id": c.ID().String(), "recipients": recipients})
	}
	fmt.Fprintf(e.stdout, "registered for %s:\n", c.ID())
	for _, r := range recipients {
		fmt.Fprintf(e.stdout, "  %s\n", describeRecipient(r))
	}
	return nil
}

// describeRecipient abbreviates a recipient (hybrid ones are 1,900 characters) and
// names its kind.
func describeRecipient(r string) string {
	kind := "X25519"
	if strings.HasPrefix(r, "age1pq1") {
		kind = "post-quantum"
	}
	if len(r) > 40 {
		r = r[:24] + "…" + r[len(r)-12:]
	}
	return r + " (" + kind + ")"
}

var keysCommand = &command{
	name:    "keys",
	args:    "[--json] SPIFFE_ID | --watch",
	summary: "show the age recipients registered for an identity, or watch your own",
	help: `  --json   print the full recipients as the gateway returns them
  --watch  list every key registration under your own ID since the last
           --watch (from the verified audit log), and fail loudly when one
           was not signed with your own SVID key`,
	run: runKeys,
}

func runKeys(e *env, args []string) error {
	fs := newFlagSet("keys")
	jsonOut := fs.Bool("json", false, "")
	watch := fs.Bool("watch", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *watch {
		if len(pos) > 0 {
			return usagef("--watch watches your own ID: no SPIFFE ID")
		}
		return runKeysWatch(e, *jsonOut)
	}
	if len(pos) != 1 {
		return usagef("want exactly one SPIFFE ID")
	}
	id, err := spiffeid.FromString(pos[0])
	if err != nil {
		return usagef("%q is not a SPIFFE ID: %v", pos[0], err)
	}
	_, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	kr, err := c.Keys(e.ctx, id)
	if err != nil {
		return fmt.Errorf("keys of %s: %w", id, err)
	}
	if *jsonOut {
		return writeJSON(e.stdout, kr)
	}
	fmt.Fprintf(e.stdout, "%s", id)
	if !kr.Updated.IsZero() {
		fmt.Fprintf(e.stdout, " (registered %s)", kr.Updated.Local().Format("2006-01-02 15:04"))
	}
	fmt.Fprintln(e.stdout, ":")
	if len(kr.Recipients) == 0 {
		fmt.Fprintln(e.stdout, "  no keys registered")
	}
	for _, r := range kr.Recipients {
		fmt.Fprintf(e.stdout, "  %s\n", r)
	}
	return nil
}
