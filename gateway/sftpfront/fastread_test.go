package sftpfront

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
)

// countingReader counts the reads made of it.
type countingReader struct {
	io.ReaderAt
	reads atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	return c.ReaderAt.ReadAt(p, off)
}

// twoPathHandlers serves every file as data, giving pkg/sftp one reader and
// registering another under the request's handle for the channel, so a test
// can tell who answered the reads. A file named "/denied" reads as a refusal.
type twoPathHandlers struct {
	sftp.Handlers
	reads      *readHandles
	data       []byte
	pkg, chans *countingReader
}

func (h *twoPathHandlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	var src io.ReaderAt = bytes.NewReader(h.data)
	switch r.Filepath {
	case "/denied":
		src = errReaderAt{denied("delivery refused")}
	case "/broken":
		src = errReaderAt{errors.New("transfer: stored ciphertext does not match its manifest")}
	}
	h.pkg, h.chans = &countingReader{ReaderAt: src}, &countingReader{ReaderAt: src}
	handle, ok := requestHandle(r)
	if !ok {
		return nil, errors.New("pkg/sftp's request has no handle")
	}
	h.reads.add(handle, h.chans)
	return h.pkg, nil
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

// serveTwoPaths runs a request server over a pipe with the front's channel and
// returns a pkg/sftp client of it asking for reads of up to limitRead.
func serveTwoPaths(t *testing.T, data []byte) (*sftp.Client, *twoPathHandlers) {
	t.Helper()
	server, client := net.Pipe()
	h := &twoPathHandlers{reads: &readHandles{}, data: data}
	hs := sftp.InMemHandler()
	hs.FileGet = h
	rs := sftp.NewRequestServer(newSFTPChannel(server, h.reads), hs, sftp.WithRSAllocator(), sftp.WithRSMaxTxPacket(maxTxPacket))
	go rs.Serve()
	c, err := sftp.NewClientPipe(client, client, sftp.MaxPacketUnchecked(limitRead), sftp.UseConcurrentReads(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); rs.Close() })
	return c, h
}

// TestChannelAnswersReads: the reads of a file opened for reading are all
// answered by the channel from the reader registered under its handle, none by
// pkg/sftp: pipelined 255 KiB reads return the file's bytes, a read across the
// end is short, one past it EOF, an error of the reader reaches the client
// with its code and message, and CLOSE unregisters the handle.
func TestChannelAnswersReads(t *testing.T) {
	if handleField < 0 {
		t.Fatal("pkg/sftp's Request has no handle field: downloads would go through pkg/sftp")
	}
	data := make([]byte, 5*limitRead+12345)
	rand.Read(data)
	c, h := serveTwoPaths(t, data)

	f, err := c.Open("/inbox/x.age")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data)+limitRead) // read in pipelined requests of limitRead
	if n, err := f.ReadAt(got, 0); n != len(data) || !errors.Is(err, io.EOF) || !bytes.Equal(got[:n], data) {
		t.Fatalf("download: %v, %d of %d bytes", err, n, len(data))
	}
	p := make([]byte, 1000)
	if n, err := f.ReadAt(p, int64(len(data)-10)); n != 10 || !bytes.Equal(p[:n], data[len(data)-10:]) {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if n, err := f.ReadAt(p, int64(len(data)+5)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read past the end: %d, %v; want io.EOF", n, err)
	}
	if h.pkg.reads.Load() != 0 || h.chans.reads.Load() == 0 {
		t.Errorf("pkg/sftp answered %d reads, the channel %d; want all by the channel", h.pkg.reads.Load(), h.chans.reads.Load())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.reads.m); n != 0 {
		t.Errorf("%d handles still registered after CLOSE", n)
	}

	for name, want := range map[string]func(error) bool{
		"/denied": func(err error) bool { return errors.Is(err, os.ErrPermission) },
		"/broken": func(err error) bool {
			var se *sftp.StatusError
			return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure && strings.Contains(err.Error(), "does not match its manifest")
		},
	} {
		d, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadAt(p, 0); !want(err) {
			t.Errorf("read of %s: %v; want the reader's error with its code", name, err)
		}
		d.Close()
	}
}

// TestStatusReply: a read's errors are coded as pkg/sftp codes them.
func TestStatusReply(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint32
	}{
		{io.EOF, fxEOF},
		{notFound("gone"), fxNoSuchFile},
		{denied("no"), fxPermissionDenied},
		{errors.New("transfer: stored ciphertext does not match its manifest"), fxFailure},
	} {
		b := statusReply(7, tc.err)
		if len(b) < 17 || b[4] != fxpStatus || int(u32at(b, 0)) != len(b)-4 || u32at(b, 5) != 7 || u32at(b, 9) != tc.code ||
			string(b[17:17+u32at(b, 13)]) != tc.err.Error() {
			t.Errorf("%v: status %x", tc.err, b)
		}
	}
}

func u32at(b []byte, i int) uint32 {
	return uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
}
