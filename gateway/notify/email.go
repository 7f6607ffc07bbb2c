package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

//go:embed templates/*.tmpl
var builtinTemplates embed.FS

// MailData is what an email template sees. It has no file names: the
// notifier never reads a manifest. Matter is empty unless the organisation
// of the transfer's sender allows it in email (Directory.Organisations).
type MailData struct {
	Kind       string
	EventID    string
	TransferID string
	RequestID  string
	DecisionID string
	From       string // the sender's SPIFFE ID
	Actor      string // who acted: an approver, a records manager
	Recipients []string
	Matter     string
	ExpiresAt  time.Time
	Reasons    []Reason
}

// mailer sends one message per address over SMTP.
type mailer struct {
	cfg       EmailConfig
	password  string
	tls       *tls.Config
	templates map[string]*template.Template
}

func newMailer(c EmailConfig) (*mailer, error) {
	m := &mailer{cfg: c, templates: map[string]*template.Template{}}
	host, _, err := net.SplitHostPort(c.SMTP)
	if err != nil {
		return nil, fmt.Errorf("notify: email.smtp: %w", err)
	}
	m.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		if m.tls.RootCAs, err = loadPool(c.CAFile); err != nil {
			return nil, fmt.Errorf("notify: email.ca_file: %w", err)
		}
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("notify: email.password_file: %w", err)
		}
		m.password = strings.TrimRight(string(b), "\r\n")
	}
	if err := m.loadTemplates(builtinTemplates, "templates"); err != nil {
		return nil, err
	}
	if c.Templates != "" {
		if err := m.loadTemplates(os.DirFS(c.Templates), "."); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// loadTemplates parses every KIND.tmpl in dir of fsys, replacing those
// already loaded under the same kind.
func (m *mailer) loadTemplates(fsys fs.FS, dir string) error {
	names, err := fs.Glob(fsys, filepath.Join(dir, "*.tmpl"))
	if err != nil {
		return fmt.Errorf("notify: email templates: %w", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("notify: email template %s: %w", name, err)
		}
		kind := strings.TrimSuffix(filepath.Base(name), ".tmpl")
		t, err := template.New(kind).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return fmt.Errorf("notify: email template %s: %w", name, err)
		}
		m.templates[kind] = t
	}
	return nil
}

// mails reports whether kind is mailed: it has a template and is subscribed.
func (m *mailer) mails(kind string) bool {
	return m.templates[kind] != nil && subscribed(m.cfg.Events, kind)
}

// render executes kind's template: its first line "Subject: …", a blank
// line, then the body.
func (m *mailer) render(kind string, d MailData) (subject, body string, err error) {
	t := m.templates[kind]
	if t == nil {
		return "", "", fmt.Errorf("no email template for %s", kind)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("email template %s: %w", kind, err)
	}
	head, body, ok := strings.Cut(b.String(), "\n\n")
	subject, found := strings.CutPrefix(head, "Subject: ")
	if !ok || !found || strings.ContainsAny(subject, "\r\n") {
		return "", "", fmt.Errorf(`email template %s: want "Subject: …", a blank line, then the body`, kind)
	}
	return subject, body, nil
}

// message builds an RFC 5322 message, quoted-printable UTF-8 text.
func (m *mailer) message(to, subject, body, eventID string, now time.Time) ([]byte, error) {
	if strings.ContainsAny(to+m.cfg.From, "\r\n") {
		return nil, errors.New("address with a line break")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", m.cfg.From, to,
		mime.QEncoding.Encode("utf-8", subject), now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%x@lexgate>\r\n", eventID, now.UnixNano())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")
	fmt.Fprintf(&b, "X-Lexgate-Event: %s\r\n\r\n", eventID)
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes(), nil
}

// send delivers msg to one address.
func (m *mailer) send(ctx context.Context, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.SMTP)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if m.cfg.TLS == "implicit" {
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.tls.ServerName)
	if err != nil {
		return err
	}
	defer c.Close()
	if m.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the SMTP server does not offer STARTTLS (notify.email.tls: starttls); refusing to send in clear")
		}
		if err := c.StartTLS(m.tls); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.password, m.tls.ServerName)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// deliver mails the event to address to.
func (m *mailer) deliver(ctx context.Context, d *Directory, ev store.Event, p Payload, to string, now time.Time) error {
	md := MailData{Kind: ev.Kind, EventID: ev.ID, TransferID: p.TransferID, RequestID: p.RequestID,
		DecisionID: p.DecisionID, From: p.Sender, Actor: p.Actor, Recipients: p.Recipients,
		ExpiresAt: p.Expires(), Reasons: p.Reasons}
	if d.IncludeMatter(p.owner()) {
		md.Matter = p.Matter
	}
	subject, body, err := m.render(ev.Kind, md)
	if err != nil {
		return err
	}
	msg, err := m.message(to, subject, body, ev.ID, now)
	if err != nil {
		return err
	}
	return m.send(ctx, to, msg)
}
