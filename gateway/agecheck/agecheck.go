// Package agecheck checks the structure of an age file's header before the
// gateway keeps a byte of it. The gateway cannot decrypt what it stores, but it
// can refuse, at upload, a file no recipient could open or that asks recipients
// to do unbounded work: a truncated header, non-canonical base64, thousands of
// stanzas, a very long line, a passphrase (scrypt) stanza.
//
// The checks follow the age v1 format (https://age-encryption.org/v1):
//
//	age-encryption.org/v1
//	-> TYPE ARG...                  at least one, at most MaxStanzas stanzas
//	BODY                            unpadded base64, 64 columns, last line shorter
//	--- MAC                         43 characters of unpadded base64 (32 bytes)
//
// Every stanza argument is one or more printable ASCII characters; lines end in
// LF; each line is at most MaxLineLen bytes and the whole header at most
// MaxHeaderSize. Stanza types are not interpreted beyond refusing "scrypt": any
// recipient type, including plugin and grease stanzas, passes.
//
// Header checks a header held in memory; Check and NewReader wrap an upload
// stream and release no byte until the whole header has passed, so a refused
// file leaves nothing behind. The whole header must therefore arrive in the
// upload's first request (at offset 0): at most MaxHeaderSize bytes, a few KiB
// in practice.
package agecheck

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// Limits of an acceptable header. Real headers are far smaller: an X25519
// stanza is three lines, a post-quantum hybrid one about twenty.
const (
	// MaxStanzas is the most recipient stanzas a header may carry.
	MaxStanzas = 64
	// MaxLineLen bounds one header line, without its LF. A hybrid
	// (mlkem768x25519) stanza's argument line is about 1,500 bytes.
	MaxLineLen = 4096
	// MaxHeaderSize bounds the whole header, MAC line included.
	MaxHeaderSize = 256 << 10
)

const (
	versionLine = "age-encryption.org/v1"
	bodyColumns = 64
	macLen      = 43 // base64 of 32 bytes, unpadded
)

// ErrTruncated is wrapped by the *Error for a header that ends before its MAC line.
var ErrTruncated = errors.New("agecheck: truncated header")

// Error is a refused header: which line, and why.
type Error struct {
	Line int    // 1-based header line, 0 when the problem is not one line's
	Msg  string // what is wrong
	Err  error  // ErrTruncated or nil
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return "agecheck: age header: " + e.Msg
	}
	return fmt.Sprintf("agecheck: age header line %d: %s", e.Line, e.Msg)
}

// Unwrap returns ErrTruncated for a truncated header.
func (e *Error) Unwrap() error { return e.Err }

func fail(line int, format string, args ...any) error {
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Header checks the age header at the start of b and returns its length in
// bytes (where the payload starts). b may hold more than the header. A header
// cut short is an *Error wrapping ErrTruncated.
func Header(b []byte) (int, error) {
	p := parser{b: b}
	line, ok, err := p.next()
	if err != nil {
		return 0, err
	}
	if !ok && !bytes.HasPrefix([]byte(versionLine), b) {
		return 0, fail(1, "want the version line %q", versionLine)
	}
	if !ok {
		return 0, p.truncated()
	}
	if line != versionLine {
		return 0, fail(1, "want the version line %q", versionLine)
	}
	stanzas := 0
	for {
		line, ok, err := p.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, p.truncated()
		}
		switch {
		case bytes.HasPrefix([]byte(line), []byte("-> ")):
			if stanzas++; stanzas > MaxStanzas {
				return 0, fail(p.line, "more than %d recipient stanzas", MaxStanzas)
			}
			if err := p.stanza(line); err != nil {
				return 0, err
			}
		case bytes.HasPrefix([]byte(line), []byte("---")):
			if stanzas == 0 {
				return 0, fail(p.line, "no recipient stanza before the MAC line")
			}
			if err := mac(p.line, line); err != nil {
				return 0, err
			}
			return p.off, nil
		default:
			return 0, fail(p.line, "want a stanza (\"-> \") or the MAC line (\"--- \")")
		}
	}
}

type parser struct {
	b    []byte
	off  int // start of the next line
	line int // number of the last line returned
}

// next returns the next LF-terminated line, or ok false when b ends first.
func (p *parser) next() (string, bool, error) {
	rest := p.b[p.off:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		if len(rest) > MaxLineLen {
			return "", false, fail(p.line+1, "longer than %d bytes", MaxLineLen)
		}
		return "", false, nil
	}
	p.line++
	if i > MaxLineLen {
		return "", false, fail(p.line, "%d bytes long, more than %d", i, MaxLineLen)
	}
	if p.off+i+1 > MaxHeaderSize {
		return "", false, fail(0, "longer than %d bytes", MaxHeaderSize)
	}
	p.off += i + 1
	return string(rest[:i]), true, nil
}

func (p *parser) truncated() error {
	if len(p.b) > MaxHeaderSize {
		return fail(0, "longer than %d bytes", MaxHeaderSize)
	}
	return &Error{Line: p.line + 1, Msg: "the header ends before its MAC line (\"--- \"); an upload's first request must carry the whole header", Err: ErrTruncated}
}

// stanza checks a stanza's argument line and reads its body.
func (p *parser) stanza(line string) error {
	n := p.line
	args := bytes.Split([]byte(line[3:]), []byte(" "))
	for _, a := range args {
		if len(a) == 0 {
			return fail(n, "empty stanza argument (two spaces, or a trailing space)")
		}
		for _, c := range a {
			if c < 0x21 || c > 0x7e {
				return fail(n, "stanza argument has byte %#02x; only printable ASCII is allowed", c)
			}
		}
	}
	if string(args[0]) == "scrypt" {
		return fail(n, "a passphrase (scrypt) stanza: lexgate transfers are encrypted to recipients' keys, never to a passphrase")
	}
	var body []byte
	for {
		l, ok, err := p.next()
		if err != nil {
			return err
		}
		if !ok {
			return p.truncated()
		}
		if len(l) > bodyColumns {
			return fail(p.line, "stanza body line of %d columns; base64 bodies wrap at %d", len(l), bodyColumns)
		}
		body = append(body, l...)
		if len(l) < bodyColumns {
			break
		}
	}
	if _, err := base64.RawStdEncoding.Strict().DecodeString(string(body)); err != nil || bytes.ContainsAny(body, "\r=") {
		return fail(p.line, "stanza body (from line %d) is not canonical unpadded base64", n+1)
	}
	return nil
}

// mac checks the MAC line: "--- " and 32 bytes of canonical unpadded base64.
func mac(n int, line string) error {
	enc, ok := bytes.CutPrefix([]byte(line), []byte("--- "))
	if !ok || len(enc) != macLen {
		return fail(n, "the MAC line must be \"--- \" and %d base64 characters", macLen)
	}
	if b, err := base64.RawStdEncoding.Strict().DecodeString(string(enc)); err != nil || len(b) != 32 {
		return fail(n, "the MAC is not canonical unpadded base64")
	}
	return nil
}
