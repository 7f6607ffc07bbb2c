package sftpfront

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"reflect"
	"sync"

	"github.com/pkg/sftp"
)

// The reads of a download are answered by the session's channel itself, not by
// pkg/sftp. pkg/sftp would hand each read to one of its workers, read into a
// buffer of its own and then, marshalling the reply, move the whole 255 KiB of
// data 13 bytes up in that buffer to make room for the header (its ordered
// replies do not use the header-and-payload path that would avoid it): a
// second copy of every byte served, and a hand-off between three goroutines
// per read. The channel reads the data once into its reply buffer, behind the
// header, and writes the reply between two of pkg/sftp's packets, as it does
// for limits@openssh.com.
//
// It knows which handles are downloads because Fileread registers each reader
// it returns under pkg/sftp's handle for it (readHandles), before pkg/sftp
// sends the handle to the client; a CLOSE of the handle unregisters it as it
// passes through to pkg/sftp, which closes the reader. pkg/sftp v1 does not
// export a request's handle, so requestHandle reads the field by reflection;
// should a later version rename it, downloads go through pkg/sftp as before
// (TestRequestHandle fails first). Reads are answered in the order they
// arrive, one at a time, by the goroutine that reads the channel; as CLOSE
// arrives after them, every read of a handle is answered before pkg/sftp sees
// its CLOSE.

const (
	fxpClose  = 4
	fxpRead   = 5
	fxpStatus = 101
	fxpData   = 103

	// maxHandleRequest is the largest READ or CLOSE packet read whole to look
	// at its handle; larger ones pass through to pkg/sftp.
	maxHandleRequest = 1024
	// dataHeader is a DATA reply's length, type, id and data length.
	dataHeader = 4 + 1 + 4 + 4
)

// SFTP status codes the channel answers a read with.
const (
	fxEOF              = 1
	fxNoSuchFile       = 2
	fxPermissionDenied = 3
	fxFailure          = 4
)

// readHandles holds the readers of the files a session opened for reading, by
// pkg/sftp's handle. Safe for concurrent use.
type readHandles struct {
	mu sync.Mutex
	m  map[string]io.ReaderAt
}

func (h *readHandles) add(handle string, rd io.ReaderAt) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]io.ReaderAt{}
	}
	h.m[handle] = rd
}

func (h *readHandles) get(handle []byte) io.ReaderAt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[string(handle)]
}

func (h *readHandles) remove(handle []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, string(handle))
}

// handleField is the index of pkg/sftp's unexported Request.handle, -1 if it
// has none.
var handleField = func() int {
	f, ok := reflect.TypeFor[sftp.Request]().FieldByName("handle")
	if !ok || len(f.Index) != 1 || f.Type.Kind() != reflect.String {
		return -1
	}
	return f.Index[0]
}()

// requestHandle is the handle pkg/sftp gave the open request r.
func requestHandle(r *sftp.Request) (string, bool) {
	if handleField < 0 || r == nil {
		return "", false
	}
	h := reflect.ValueOf(r).Elem().Field(handleField).String()
	return h, h != ""
}

// handleRequest looks at a READ or CLOSE request (body: its bytes after the
// type) of a registered handle: a CLOSE unregisters it and passes on, a READ
// is answered here (true).
func (l *limitsReader) handleRequest(typ byte, body []byte) (bool, error) {
	if len(body) < 8 {
		return false, nil
	}
	id, n := binary.BigEndian.Uint32(body), int64(binary.BigEndian.Uint32(body[4:]))
	if int64(len(body)) < 8+n {
		return false, nil
	}
	handle, rest := body[8:8+n], body[8+n:]
	if typ == fxpClose {
		l.reads.remove(handle)
		return false, nil
	}
	if len(rest) < 12 {
		return false, nil
	}
	rd := l.reads.get(handle)
	if rd == nil {
		return false, nil
	}
	return true, l.serveRead(id, rd, binary.BigEndian.Uint64(rest), binary.BigEndian.Uint32(rest[8:]))
}

// serveRead answers the read id of n bytes at off from rd as pkg/sftp would:
// at most maxTxPacket bytes, a short read at the end, EOF or the error as a
// status.
func (l *limitsReader) serveRead(id uint32, rd io.ReaderAt, off uint64, n uint32) error {
	n = min(n, maxTxPacket)
	if cap(l.out) < dataHeader+maxTxPacket {
		l.out = make([]byte, dataHeader+maxTxPacket)
	}
	buf := l.out[:dataHeader+int(n)]
	k, err := rd.ReadAt(buf[dataHeader:], int64(off))
	if err != nil && (!errors.Is(err, io.EOF) || k == 0) {
		return l.reply(statusReply(id, err))
	}
	binary.BigEndian.PutUint32(buf, uint32(dataHeader-4+k))
	buf[4] = fxpData
	binary.BigEndian.PutUint32(buf[5:], id)
	binary.BigEndian.PutUint32(buf[9:], uint32(k))
	return l.reply(buf[:dataHeader+k])
}

// statusReply is the STATUS packet answering request id with err, coded as
// pkg/sftp codes the errors of a read.
func statusReply(id uint32, err error) []byte {
	code := uint32(fxFailure)
	switch {
	case errors.Is(err, io.EOF):
		code = fxEOF
	case os.IsNotExist(err), errors.Is(err, sftp.ErrSSHFxNoSuchFile):
		code = fxNoSuchFile
	case errors.Is(err, os.ErrPermission), errors.Is(err, sftp.ErrSSHFxPermissionDenied):
		code = fxPermissionDenied
	}
	msg := err.Error()
	b := make([]byte, 0, 4+1+4+4+4+len(msg)+4)
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+4+len(msg)+4))
	b = append(b, fxpStatus)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, code)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, msg...)
	return binary.BigEndian.AppendUint32(b, 0) // language tag: none
}
