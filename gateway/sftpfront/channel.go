package sftpfront

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// OpenSSH's sftp client downloads in reads and uploads in writes of 32 KiB
// unless the server answers the limits@openssh.com extension, which it asks
// for (OpenSSH 8.6 and later) when the server's VERSION lists it; against its
// own sftp-server it then reads and writes 255 KiB at a time, a eighth of the requests, replies and SSH packets
// for the same file. pkg/sftp v1 does not know the extension, so the session's
// channel speaks it in front of the request server: it adds the extension to
// pkg/sftp's VERSION and answers the limits request itself; it also answers
// the reads of downloads (fastread.go); every other packet passes through
// untouched. Reads of up to limitRead are served (pkg/sftp's
// maxTxPacket), and writes of up to limitWrite, as sftp-server offers them: an
// upload then comes in an eighth of the write requests and status replies.

const (
	fxpVersion       = 2
	fxpExtended      = 200
	fxpExtendedReply = 201

	extLimits = "limits@openssh.com"
	// limitPacket is the largest packet pkg/sftp receives.
	limitPacket = 256 << 10
	// limitRead is the largest read the front answers whole: what OpenSSH's
	// sftp-server offers (its 256 KiB packets, less room for the header),
	// within maxTxPacket.
	limitRead = maxTxPacket - 1024
	// limitWrite is the largest write the front takes whole: what OpenSSH's
	// sftp-server offers, within limitPacket (the write request's header
	// takes less than the 1 KiB left).
	limitWrite = limitPacket - 1024
	// maxExtended is the largest extended request read whole to look at its
	// name; larger ones pass through to pkg/sftp.
	maxExtended = 64 << 10
)

// sftpChannel is an SFTP session's channel as the request server sees it, with
// limits@openssh.com spoken. Its writes go straight to the SSH channel (the
// connection below batches the socket writes): gathering the replies into full
// SSH packets too would save one small packet per 255 KiB reply at the price of
// copying every byte once more.
type sftpChannel struct {
	in limitsReader
	ch io.WriteCloser

	mu        sync.Mutex
	boundary  sync.Cond // the outgoing stream is between packets
	left      int64     // bytes of the current outgoing packet still to come
	lenBuf    [4]byte   // the length of the next outgoing packet, as it arrives
	nLen      int
	versioned bool // the VERSION packet has gone out
	closed    bool
}

// newSFTPChannel speaks for the request server on ch; the reads of handles in
// reads are answered by the channel itself (see fastread.go).
func newSFTPChannel(ch io.ReadWriteCloser, reads *readHandles) *sftpChannel {
	c := &sftpChannel{ch: ch}
	c.boundary.L = &c.mu
	c.in = limitsReader{r: ch, reply: c.inject, reads: reads}
	return c
}

// Read reads the client's packets, minus the limits requests it answered.
func (c *sftpChannel) Read(p []byte) (int, error) { return c.in.Read(p) }

// Write writes the request server's bytes, adding the extension to VERSION.
func (c *sftpChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.versioned && c.left == 0 && c.nLen == 0 && isVersion(p) {
		c.versioned = true
		if _, err := c.ch.Write(withLimits(p)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.frame(p)
	n, err := c.ch.Write(p)
	if c.left == 0 && c.nLen == 0 {
		c.boundary.Broadcast()
	}
	return n, err
}

// frame follows the outgoing packets' lengths through p.
func (c *sftpChannel) frame(p []byte) {
	for len(p) > 0 {
		if c.left > 0 {
			k := min(int64(len(p)), c.left)
			c.left -= k
			p = p[k:]
			continue
		}
		k := copy(c.lenBuf[c.nLen:], p)
		c.nLen += k
		p = p[k:]
		if c.nLen == 4 {
			c.left, c.nLen = int64(binary.BigEndian.Uint32(c.lenBuf[:])), 0
		}
	}
}

// inject writes a whole packet of the front's own between two of pkg/sftp's.
func (c *sftpChannel) inject(pkt []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (c.left > 0 || c.nLen > 0) && !c.closed {
		c.boundary.Wait()
	}
	if c.closed {
		return net.ErrClosed
	}
	_, err := c.ch.Write(pkt)
	return err
}

// Close closes the channel; an answer waiting to go out is dropped.
func (c *sftpChannel) Close() error {
	err := c.ch.Close()
	c.mu.Lock()
	c.closed = true
	c.boundary.Broadcast()
	c.mu.Unlock()
	return err
}

// isVersion reports whether p is exactly one SSH_FXP_VERSION packet.
func isVersion(p []byte) bool {
	return len(p) >= 9 && p[4] == fxpVersion && int64(binary.BigEndian.Uint32(p)) == int64(len(p))-4
}

// withLimits is the VERSION packet p with limits@openssh.com added.
func withLimits(p []byte) []byte {
	out := make([]byte, 0, len(p)+4+len(extLimits)+4+1)
	out = append(out, p...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(extLimits)))
	out = append(out, extLimits...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = append(out, '1')
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// limitsReply is the answer to the limits request with id.
func limitsReply(id uint32) []byte {
	b := make([]byte, 0, 4+1+4+4*8)
	b = binary.BigEndian.AppendUint32(b, 1+4+4*8)
	b = append(b, fxpExtendedReply)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint64(b, limitPacket)
	b = binary.BigEndian.AppendUint64(b, limitRead)
	b = binary.BigEndian.AppendUint64(b, limitWrite)
	return binary.BigEndian.AppendUint64(b, 0) // open handles: no limit announced
}

// limitsReader passes the client's packets through, except the limits
// requests and the reads of handles in reads (if not nil), which it answers
// with reply.
type limitsReader struct {
	r       io.Reader
	reply   func([]byte) error
	reads   *readHandles
	pending []byte // bytes to hand out before reading r again
	left    int64  // bytes of the current packet to pass straight from r
	body    []byte // a READ or CLOSE request being looked at
	out     []byte // the reply to a read
}

func (l *limitsReader) Read(p []byte) (int, error) {
	for {
		switch {
		case len(p) == 0:
			return 0, nil
		case len(l.pending) > 0:
			n := copy(p, l.pending)
			l.pending = l.pending[n:]
			return n, nil
		case l.left > 0:
			n, err := l.r.Read(p[:min(int64(len(p)), l.left)])
			l.left -= int64(n)
			return n, err
		}
		var hdr [5]byte // a packet starts: its length and type
		if n, err := io.ReadFull(l.r, hdr[:]); err != nil {
			l.pending = append([]byte(nil), hdr[:n]...)
			if len(l.pending) > 0 {
				continue // hand out what came; the error comes again next time
			}
			return 0, err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:]))
		if l.reads != nil && (hdr[4] == fxpRead || hdr[4] == fxpClose) && length >= 1+4+4 && length <= maxHandleRequest {
			if cap(l.body) < maxHandleRequest {
				l.body = make([]byte, maxHandleRequest)
			}
			body := l.body[:length-1]
			if n, err := io.ReadFull(l.r, body); err != nil {
				l.pending = append(hdr[:], body[:n]...)
				continue
			}
			served, err := l.handleRequest(hdr[4], body)
			if err != nil {
				return 0, err
			}
			if !served {
				l.pending = append(hdr[:], body...)
			}
			continue
		}
		if hdr[4] != fxpExtended || length < 1+4+4 || length > maxExtended {
			l.pending, l.left = append([]byte(nil), hdr[:]...), max(length-1, 0)
			continue
		}
		body := make([]byte, length-1)
		if n, err := io.ReadFull(l.r, body); err != nil {
			l.pending = append(hdr[:], body[:n]...)
			continue
		}
		if id, ok := isLimits(body); ok {
			if err := l.reply(limitsReply(id)); err != nil {
				return 0, err
			}
			continue
		}
		l.pending = append(hdr[:], body...)
	}
}

// isLimits parses an extended request's body (id, name, data) and reports
// whether it is limits@openssh.com, with its id.
func isLimits(body []byte) (uint32, bool) {
	if len(body) < 8 {
		return 0, false
	}
	id, n := binary.BigEndian.Uint32(body), int64(binary.BigEndian.Uint32(body[4:]))
	return id, n == int64(len(extLimits)) && int64(len(body)) >= 8+n && string(body[8:8+n]) == extLimits
}
