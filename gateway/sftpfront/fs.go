package sftpfront

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// The virtual tree an account sees; nothing of the host's file system is visible:
//
//	/outbox/<recipient>/<name>   write-only: each file written becomes a transfer
//	/inbox/<id>-<name>.age       the account's deliveries, ciphertext, read-only; remove = acknowledge
const (
	dirInbox  = "inbox"
	dirOutbox = "outbox"
)

// handler serves one SFTP session of an account. Every action goes through the core.
type handler struct {
	s    *Server
	acct *account
	log  *slog.Logger
	ctx  context.Context
	// reads gets the reader of every file opened for reading, under its
	// handle, so that the channel answers its reads (nil: pkg/sftp does).
	reads *readHandles
}

func (h *handler) handlers() sftp.Handlers {
	return sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// split checks a cleaned absolute request path and returns its elements. Every
// element must be a valid file name (no control characters, at most 255 bytes).
func split(p string) ([]string, error) {
	if p == "/" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, denied("path %q is not absolute", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for _, e := range parts {
		if err := api.ValidFileName(e); err != nil {
			return nil, denied("%v", err)
		}
	}
	return parts, nil
}

// refuse audits a refusal made by the front itself (not by the policy) and
// returns err as the client sees it.
func (h *handler) refuse(action, code string, err error) error {
	h.log.WarnContext(h.ctx, "sftp request refused", "action", action, "code", code, "err", err)
	h.s.metrics.refused(code)
	h.s.core.Refused(h.ctx, h.acct.id, action, code, err.Error())
	return err
}

// resolveRecipient maps an /outbox directory name to a SPIFFE ID: a configured
// alias, or trust-domain+path+elements.
func (h *handler) resolveRecipient(name string) (spiffeid.ID, bool) {
	if id, ok := h.s.cfg.Recipients[name]; ok {
		v, err := spiffeid.FromString(id)
		return v, err == nil
	}
	td, rest, ok := strings.Cut(name, "+")
	if !ok || strings.Contains(name, "/") { // "a/b+c" would be spiffe://a/b/c, in trust domain a
		return spiffeid.ID{}, false
	}
	v, err := spiffeid.FromString("spiffe://" + td + "/" + strings.ReplaceAll(rest, "+", "/"))
	return v, err == nil
}

// Filewrite starts an upload: /outbox/<recipient>/<name> only.
func (h *handler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	parts, err := split(r.Filepath)
	if err != nil {
		return nil, h.refuse("sftp_write", "sftp.bad_name", err)
	}
	if len(parts) != 3 || parts[0] != dirOutbox {
		if len(parts) > 0 && parts[0] == dirInbox {
			return nil, h.refuse("sftp_write", "sftp.read_only", denied("%s: /inbox is read-only; upload into /outbox/<recipient>/", r.Filepath))
		}
		return nil, h.refuse("sftp_write", "sftp.outside_tree", denied("%s: files can only be written as /outbox/<recipient>/<name>", r.Filepath))
	}
	rcpt, ok := h.resolveRecipient(parts[1])
	if !ok {
		return nil, h.refuse("sftp_write", "sftp.unknown_recipient", notFound("%s: no recipient %q (a configured alias, or trust-domain+path)", r.Filepath, parts[1]))
	}
	key := uploadKey{account: h.acct.Name, dir: parts[1], name: parts[2]}
	pf := r.Pflags()
	if pf.Read {
		return nil, h.refuse("sftp_write", "sftp.bad_mode", denied("%s: uploads are write-only: no read-write opens", r.Filepath))
	}
	log := h.log.With("path", r.Filepath)
	if !pf.Trunc {
		if w := h.s.uploads.resume(key); w != nil {
			off := w.resume(h.ctx, log)
			h.s.metrics.resumed.Inc()
			log.InfoContext(h.ctx, "sftp upload resumed", "offset", off)
			return w, nil
		}
		if pf.Append {
			return nil, h.refuse("sftp_write", "sftp.no_resume", failure("%s: nothing to resume: no interrupted upload of this file in the last %s (a gateway restart forgets them); upload the whole file with put",
				r.Filepath, h.s.cfg.UploadWindow))
		}
	}
	h.s.uploads.discard(key) // a new upload replaces an interrupted one
	max := h.s.cfg.MaxUploadSize
	if h.acct.MaxUploadSize > 0 && h.acct.MaxUploadSize < max {
		max = h.acct.MaxUploadSize
	}
	ing, err := h.s.core.BeginIngest(h.ctx, h.acct.id, h.s.sealer, transfer.IngestRequest{Recipient: rcpt,
		Name: deliveredName(parts[2]), Matter: h.acct.Matter, Labels: h.acct.Labels, Regions: h.acct.Regions, MaxSize: max})
	if err != nil {
		log.WarnContext(h.ctx, "sftp upload refused", "err", err)
		return nil, h.status(err)
	}
	log.InfoContext(h.ctx, "sftp upload started", "recipient", rcpt.String())
	w := newIngestWriter(h.ctx, log, ing, max, key, h.s.uploads, h.s.metrics)
	h.s.uploads.begin(key, w)
	return w, nil
}

// tempSuffix is the suffix WinSCP uploads under before renaming the file to
// its name (its default for files over 100 KB, for resumable transfers).
const tempSuffix = ".filepart"

// deliveredName is the name an upload written as name is delivered under:
// name without WinSCP's temporary suffix.
func deliveredName(name string) string {
	if n := strings.TrimSuffix(name, tempSuffix); n != "" && api.ValidFileName(n) == nil {
		return n
	}
	return name
}

// finishRename accepts the rename that ends a WinSCP-style upload: a finished
// /outbox/<r>/<name>.filepart to /outbox/<r>/<name> in the same directory.
// The upload was delivered as <name> when it closed; the rename only moves
// its listing. Any other rename is refused by the caller.
func (h *handler) finishRename(r *sftp.Request, parts []string) bool {
	to, err := split(r.Target)
	if err != nil || len(parts) != 3 || len(to) != 3 || parts[0] != dirOutbox || to[0] != dirOutbox ||
		parts[1] != to[1] || parts[2] == to[2] || deliveredName(parts[2]) != to[2] {
		return false
	}
	from := uploadKey{account: h.acct.Name, dir: parts[1], name: parts[2]}
	ok, err := h.s.uploads.rename(h.ctx, from, uploadKey{account: h.acct.Name, dir: to[1], name: to[2]})
	if err != nil {
		h.log.ErrorContext(h.ctx, "sftp upload rename: the record of finished uploads could not be updated", "from", r.Filepath, "to", r.Target, "err", err)
	}
	if !ok {
		return false
	}
	h.log.InfoContext(h.ctx, "sftp upload renamed from its temporary name (it was delivered under the final name)", "from", r.Filepath, "to", r.Target)
	return true
}

// status is status(err), counting a policy refusal in the metrics.
func (h *handler) status(err error) error {
	h.s.metrics.refusedErr(err)
	return status(err)
}

// Fileread opens a delivery in /inbox: the core decides "receive" each time.
func (h *handler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	rd, err := h.fileread(r)
	if err != nil {
		return nil, err
	}
	rd = countingReaderAt{r: rd, c: h.s.metrics.bytesOut}
	if h.reads != nil {
		if handle, ok := requestHandle(r); ok {
			h.reads.add(handle, rd)
		}
	}
	return rd, err
}

func (h *handler) fileread(r *sftp.Request) (io.ReaderAt, error) {
	parts, err := split(r.Filepath)
	if err != nil {
		return nil, h.refuse("sftp_read", "sftp.bad_name", err)
	}
	if len(parts) != 2 || parts[0] != dirInbox {
		return nil, h.refuse("sftp_read", "sftp.outside_tree", denied("%s: only /inbox/<file> can be read", r.Filepath))
	}
	id, _, ok := strings.Cut(parts[1], "-")
	if !ok || (h.acct.custody == nil && !strings.HasSuffix(parts[1], ".age")) {
		return nil, notFound("%s: no such delivery", r.Filepath)
	}
	f, t, err := h.s.core.Open(h.ctx, h.acct.id, id)
	if err != nil {
		h.log.WarnContext(h.ctx, "sftp download refused", "path", r.Filepath, "err", err)
		return nil, h.status(err)
	}
	if h.acct.custody == nil {
		h.log.InfoContext(h.ctx, "sftp download", "transfer", id)
		return f, nil
	}
	plain, err := h.openPlain(f, t)
	if err != nil {
		f.Close()
		h.log.ErrorContext(h.ctx, "sftp custodial download refused", "transfer", id, "err", err)
		return nil, h.refuse("sftp_read", "sftp.custody", err)
	}
	h.log.InfoContext(h.ctx, "sftp download, decrypted by the gateway (custodial inbox)", "transfer", id)
	return readerAtCloser{plain, f}, nil
}

// readerAtCloser serves a decrypted delivery and closes its ciphertext file.
type readerAtCloser struct {
	io.ReaderAt
	io.Closer
}

// Filecmd: remove in /inbox acknowledges; setstat of times is kept on an
// upload (see setstat); every other command (mkdir, rmdir, rename, symlink,
// link, setstat of owners) is refused.
func (h *handler) Filecmd(r *sftp.Request) error {
	parts, err := split(r.Filepath)
	if err != nil {
		return h.refuse("sftp_"+strings.ToLower(r.Method), "sftp.bad_name", err)
	}
	switch r.Method {
	case "Remove":
		if len(parts) != 2 || parts[0] != dirInbox {
			return h.refuse("sftp_remove", "sftp.read_only", denied("%s: only deliveries in /inbox can be removed (acknowledged)", r.Filepath))
		}
		id, _, _ := strings.Cut(parts[1], "-")
		if err := h.s.core.Ack(h.ctx, h.acct.id, id); err != nil {
			return h.status(err)
		}
		h.log.InfoContext(h.ctx, "sftp acknowledged", "transfer", id)
		return nil
	case "Setstat":
		return h.setstat(r, parts)
	case "Symlink", "Link":
		return h.refuse("sftp_"+strings.ToLower(r.Method), "sftp.link", denied("links cannot be created here"))
	case "Rename":
		if h.finishRename(r, parts) {
			return nil
		}
	}
	return h.refuse("sftp_"+strings.ToLower(r.Method), "sftp.unsupported",
		denied("%s %s: not allowed; upload into /outbox/<recipient>/, download from /inbox/", strings.ToLower(r.Method), r.Filepath))
}

// Filelist lists and stats the virtual tree.
func (h *handler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	parts, err := split(r.Filepath)
	if err != nil {
		return nil, h.refuse("sftp_list", "sftp.bad_name", err)
	}
	switch r.Method {
	case "List":
		fis, err := h.list(parts, r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt(fis), nil
	case "Stat", "Lstat":
		fi, err := h.stat(parts, r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, &statusError{code: sftp.ErrSSHFxOpUnsupported, msg: r.Method + " is not supported"}
}

func (h *handler) list(parts []string, p string) ([]os.FileInfo, error) {
	switch {
	case len(parts) == 0:
		return []os.FileInfo{h.dirInfo(dirInbox, 0o500), h.dirInfo(dirOutbox, 0o300)}, nil
	case len(parts) == 1 && parts[0] == dirOutbox:
		names := make([]string, 0, len(h.s.cfg.Recipients))
		for a := range h.s.cfg.Recipients {
			names = append(names, a)
		}
		slices.Sort(names)
		out := make([]os.FileInfo, 0, len(names))
		for _, n := range names {
			out = append(out, h.outboxDir(n))
		}
		return out, nil
	case len(parts) == 2 && parts[0] == dirOutbox:
		if _, ok := h.resolveRecipient(parts[1]); !ok {
			return nil, notFound("%s: no such recipient", p)
		}
		fis, err := h.s.uploads.list(h.ctx, h.acct.Name, parts[1])
		if err != nil {
			return nil, h.storeFailure("list "+p, err)
		}
		return fis, nil
	case len(parts) == 1 && parts[0] == dirInbox:
		return h.inbox()
	}
	if _, err := h.stat(parts, p); err != nil {
		return nil, err
	}
	return nil, failure("%s is not a directory", p)
}

func (h *handler) stat(parts []string, p string) (os.FileInfo, error) {
	switch {
	case len(parts) == 0:
		return h.dirInfo("/", 0o500), nil
	case len(parts) == 1 && parts[0] == dirInbox:
		return h.dirInfo(dirInbox, 0o500), nil
	case len(parts) == 1 && parts[0] == dirOutbox:
		return h.dirInfo(dirOutbox, 0o300), nil
	case len(parts) == 2 && parts[0] == dirOutbox:
		if _, ok := h.resolveRecipient(parts[1]); ok {
			return h.outboxDir(parts[1]), nil
		}
	case len(parts) == 3 && parts[0] == dirOutbox:
		fi, ok, err := h.s.uploads.stat(h.ctx, uploadKey{account: h.acct.Name, dir: parts[1], name: parts[2]})
		if err != nil {
			return nil, h.storeFailure("stat "+p, err)
		}
		if ok {
			return fi, nil
		}
		return nil, notFound("%s: no such file (an upload stays listed for %s after it finishes, or after it is interrupted)", p, h.s.cfg.UploadWindow)
	case len(parts) == 2 && parts[0] == dirInbox:
		fis, err := h.inbox()
		if err != nil {
			return nil, err
		}
		for _, fi := range fis {
			if fi.Name() == parts[1] {
				return fi, nil
			}
		}
	}
	return nil, notFound("%s: no such file", p)
}

// dirInfo describes a directory of the tree; its time is the front's start.
func (h *handler) dirInfo(name string, perm fs.FileMode) fileInfo {
	return fileInfo{name: name, mode: fs.ModeDir | perm, mod: h.s.started}
}

// outboxDir describes /outbox/<name>: its time is its latest upload's, or the
// front's start.
func (h *handler) outboxDir(name string) fileInfo {
	fi := h.dirInfo(name, 0o300)
	t, err := h.s.uploads.newest(h.ctx, h.acct.Name, name)
	if err != nil {
		h.log.WarnContext(h.ctx, "sftp: the time of an outbox directory shows the front's start: its finished uploads could not be read", "dir", name, "err", err)
	}
	if t.After(fi.mod) {
		fi.mod = t
	}
	return fi
}

// setstat keeps the times set on an upload in /outbox (rclone, WinSCP and
// `put -p` set them, and read them back). Owners are refused everywhere; a mode
// is ignored on an upload (`put -p` sends one with the times) and refused
// elsewhere; sizes are ignored.
func (h *handler) setstat(r *sftp.Request, parts []string) error {
	f := r.AttrFlags()
	upload := len(parts) == 3 && parts[0] == dirOutbox
	if f.UidGid || (f.Permissions && !upload) {
		return h.refuse("sftp_setstat", "sftp.setstat", denied("%s: lexgate keeps no owners or modes", r.Filepath))
	}
	if !upload {
		return nil // directories and deliveries: their times are the gateway's
	}
	mod := h.s.now()
	if f.Acmodtime {
		mod = time.Unix(int64(r.Attributes().Mtime), 0)
	}
	ok, err := h.s.uploads.setTimes(h.ctx, uploadKey{account: h.acct.Name, dir: parts[1], name: parts[2]}, mod)
	if err != nil {
		return h.storeFailure("setstat "+r.Filepath, err)
	}
	if !ok {
		return notFound("%s: no such file", r.Filepath)
	}
	return nil
}

// inbox lists the account's deliveries through the core (policy list_inbox).
func (h *handler) inbox() ([]os.FileInfo, error) {
	ts, err := h.s.core.Inbox(h.ctx, h.acct.id)
	if err != nil {
		return nil, h.status(err)
	}
	out := make([]os.FileInfo, 0, len(ts))
	for _, t := range ts {
		if h.acct.custody != nil {
			size, err := h.servedSize(t)
			if err != nil {
				// Still listed, so that it is seen; its get fails the same way.
				h.log.ErrorContext(h.ctx, "sftp custodial inbox: the size served of a delivery cannot be worked out from its stored ciphertext; listed at its manifest's size",
					"transfer", t.ID, "err", err)
				size = t.PlaintextSize
			}
			out = append(out, fileInfo{name: plainName(t), size: size, mode: 0o400, mod: t.Created})
			continue
		}
		out = append(out, fileInfo{name: InboxName(t), size: t.CiphertextSize, mode: 0o400, mod: t.Created})
	}
	return out, nil
}

// InboxName is a delivery's name in /inbox: "<id>-<readable>.age", where the
// readable part is the uploaded file's name (for transfers sealed on ingest) or
// the matter, reduced to letters, digits, ".", "_" and "-".
func InboxName(t api.Transfer) string {
	readable := t.Matter
	if m, err := t.Manifest.Decode(); err == nil && m.Content == api.ContentFile && m.Name != "" {
		readable = m.Name
	}
	var b strings.Builder
	for _, r := range readable {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	name := strings.TrimSuffix(b.String(), ".age")
	if name == "" {
		name = "transfer"
	}
	return t.ID + "-" + path.Base(name) + ".age"
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) || int(off)+n == len(l) {
		return n, io.EOF
	}
	return n, nil
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
	mod  time.Time
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return f.mod }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

// storeFailure logs that the record of finished uploads could not be read
// or written for what, and returns the client's failure status.
func (h *handler) storeFailure(what string, err error) error {
	h.log.ErrorContext(h.ctx, "sftp: the store's record of finished uploads failed", "op", what, "err", err)
	return status(err)
}
