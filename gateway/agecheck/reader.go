package agecheck

import (
	"bytes"
	"errors"
	"io"
)

// Reader passes an age file through after its header has passed Header. It
// holds back every byte until then, so a consumer that stores what it reads
// stores nothing of a refused file. A header refused is an *Error from the
// first Read; a read error of the underlying reader before the header is
// complete is returned as it is.
type Reader struct {
	r       io.Reader
	pending []byte // checked bytes not yet returned
	checked bool
	err     error
}

var _ io.Reader = (*Reader)(nil)

// NewReader returns a Reader that checks the header of the age file r starts with.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read implements io.Reader.
func (c *Reader) Read(p []byte) (int, error) {
	if !c.checked && c.err == nil {
		c.err = c.fill()
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(p)
}

// fill reads until the buffer holds the MAC line's end (or a header too long,
// or the end of r) and checks the header.
func (c *Reader) fill() error {
	buf := make([]byte, 0, 8<<10)
	var rerr error
	for !headerEnds(buf) && len(buf) <= MaxHeaderSize && rerr == nil {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		n, rerr = c.r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) && !headerEnds(buf) {
		return rerr // a transport failure, not the file's fault
	}
	if _, err := Header(buf); err != nil {
		return err
	}
	c.pending, c.checked = buf, true
	return rerr // nil, or EOF or an error to return once the buffer is delivered
}

// headerEnds reports whether b holds a complete MAC line. Only the MAC line
// starts with '-' after an LF that follows the version line: stanza lines start
// "->", body lines are base64.
func headerEnds(b []byte) bool {
	i := bytes.Index(b, []byte("\n---"))
	return i >= 0 && bytes.IndexByte(b[i+1:], '\n') >= 0
}

// Check reads the header r starts with and checks it before the caller sees a
// byte: on success it returns a reader of the whole stream, header included;
// otherwise the *Error (or the read error of r, if r failed before the header
// was complete) and a nil reader.
func Check(r io.Reader) (io.Reader, error) {
	c := NewReader(r)
	c.err = c.fill()
	if !c.checked {
		return nil, c.err
	}
	return c, nil
}
