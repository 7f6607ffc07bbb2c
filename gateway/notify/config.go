package notify

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config configures notifications: the `notify:` section of lexgate.yaml.
// The zero value sends nothing (no webhook, no SMTP server): events are
// routed to no endpoint and pruned, so turning notifications on later does
// not send a backlog of old news.
type Config struct {
	// Webhooks receive the events they subscribe to as signed JSON over HTTPS.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Email sends mail to the people the directory names.
	Email EmailConfig `yaml:"email"`
	// Directory is a YAML file mapping SPIFFE IDs to email addresses, the
	// groups (security, approvers, records) to addresses, and what each
	// organisation lets email carry (see docs/notifications.md).
	Directory string `yaml:"directory"`
	// MaxAttempts is how many failed attempts park a delivery (default 8).
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the delay before the first retry (default 10s); each
	// further retry waits twice as long, up to MaxBackoff (default 1h).
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// ExpiryWarning is how long before a transfer expires its recipients
	// and sender are told (default 72h; negative: never).
	ExpiryWarning time.Duration `yaml:"expiry_warning"`
	// PollInterval bounds how long the notifier sleeps when nothing wakes
	// it (default 30s); it also paces the expiry scan.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Workers is how many deliveries run at once (default 4).
	Workers int `yaml:"workers"`
	// Keep is how long events stay in the outbox once every delivery is
	// done (default 720h, 30 days); parked ones stay until retried.
	Keep time.Duration `yaml:"keep"`
}

// WebhookConfig is one HTTPS endpoint (Teams, Slack, a ticketing system, a SOC).
type WebhookConfig struct {
	// Name identifies the endpoint in the outbox ("webhook:NAME"); unique.
	Name string `yaml:"name"`
	// URL is the https:// address events are POSTed to.
	URL string `yaml:"url"`
	// Secret is the Standard Webhooks signing secret, "whsec_" + base64;
	// SecretFile is a file holding it (preferred: keeps it out of the config).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Events lists the event kinds sent; empty: all.
	Events []string `yaml:"events"`
	// CAFile is a PEM bundle that verifies the endpoint's certificate;
	// empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// IncludeMatter puts the matter number in the body (default false).
	IncludeMatter bool `yaml:"include_matter"`
	// Timeout bounds one delivery (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// EmailConfig is the SMTP submission server notifications go through.
type EmailConfig struct {
	// SMTP is the server's host:port; empty turns email off.
	SMTP string `yaml:"smtp"`
	// TLS is "starttls" (default: the server must offer it), "implicit"
	// (TLS from the first byte, port 465), or "none" (only for a relay on
	// loopback; the mail then crosses that hop in clear).
	TLS string `yaml:"tls"`
	// CAFile verifies the server's certificate; empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// Username and PasswordFile authenticate (AUTH PLAIN, over TLS only).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// From is the sender address, such as lexgate@harbor-law.example.
	From string `yaml:"from"`
	// Templates is a directory of templates (KIND.tmpl) that replace the
	// built-in ones of the same name.
	Templates string `yaml:"templates"`
	// Events lists the event kinds mailed; empty: all that have a template.
	Events []string `yaml:"events"`
	// Timeout bounds one delivery (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether email is configured.
func (c EmailConfig) Enabled() bool { return c.SMTP != "" }

func (c Config) withDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.Backoff == 0 {
		c.Backoff = 10 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Hour
	}
	if c.ExpiryWarning == 0 {
		c.ExpiryWarning = 72 * time.Hour
	}
	if c.PollInterval == 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Keep == 0 {
		c.Keep = 30 * 24 * time.Hour
	}
	for i := range c.Webhooks {
		if c.Webhooks[i].Timeout == 0 {
			c.Webhooks[i].Timeout = 10 * time.Second
		}
	}
	if c.Email.TLS == "" {
		c.Email.TLS = "starttls"
	}
	if c.Email.Timeout == 0 {
		c.Email.Timeout = 30 * time.Second
	}
	return c
}

// Validate reports every problem in c, each naming its key under notify.
func (c Config) Validate() error {
	var errs []error
	if c.MaxAttempts < 0 || c.Backoff < 0 || c.MaxBackoff < 0 || c.PollInterval < 0 || c.Workers < 0 || c.Keep < 0 {
		errs = append(errs, errors.New("notify: max_attempts, backoff, max_backoff, poll_interval, workers and keep must not be negative"))
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("notify.webhooks[%d]", i)
		if w.Name == "" || names[w.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is empty or not unique", key, w.Name))
		}
		names[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.url: %q is not an https:// URL (webhooks leave the gateway only over TLS)", key, w.URL))
		}
		if (w.Secret == "") == (w.SecretFile == "") {
			errs = append(errs, fmt.Errorf("%s: set exactly one of secret and secret_file", key))
		}
		if w.Secret != "" {
			if _, err := decodeSecret(w.Secret); err != nil {
				errs = append(errs, fmt.Errorf("%s.secret: %w", key, err))
			}
		}
	}
	if c.Email.Enabled() {
		switch c.Email.TLS {
		case "", "starttls", "implicit", "none":
		default:
			errs = append(errs, fmt.Errorf("notify.email.tls: %q, want starttls, implicit or none", c.Email.TLS))
		}
		if c.Email.From == "" {
			errs = append(errs, errors.New("notify.email.from: empty: set the address notifications come from"))
		}
		if c.Email.Username != "" && c.Email.PasswordFile == "" {
			errs = append(errs, errors.New("notify.email.password_file: empty while username is set"))
		}
		if c.Directory == "" {
			errs = append(errs, errors.New("notify.directory: empty: email needs the directory of addresses"))
		}
	}
	return errors.Join(errs...)
}
