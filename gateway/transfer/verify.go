package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// Every delivery from byte 0 checks the stored ciphertext against the SHA-256
// of the signed manifest, so that a bit flipped on disk, or a file replaced
// behind the store's back, is never handed out whole: on a mismatch the
// transfer is quarantined for good, the quarantine is audited, and the error
// wraps ErrHashMismatch. Parallel and resumed ranges from elsewhere do not pay
// again; recipients verify the hash and the signature of the whole file
// themselves (lex receive). A recipient that says so (CheckByRecipient) is
// served without the check and reports a mismatch, which the gateway answers
// by checking its stored copy (report.go).
//
// A transfer up to inlineVerifyMax bytes is checked before the first byte is
// sent, so a corrupted one is refused outright (422, nothing sent). A larger one
// is checked while it is served: a goroutine hashes the file from the start,
// a little ahead of the recipient's reads, which it answers from what it read
// (see window.go: the file is read from the disk once), and any read that
// touches its last holdBack bytes waits for the verdict. A corrupted large file
// therefore never reaches its end (age's STREAM format makes a truncated
// ciphertext undecryptable), and the recipient does not wait for a whole extra
// read of the file before the first byte.

const (
	// inlineVerifyMax is the largest ciphertext checked before it is served.
	inlineVerifyMax = 64 << 20
	// holdBack is how many bytes at the end of a larger ciphertext wait for the
	// background check.
	holdBack = 1 << 20
	// verifyBuf is the read size of the check.
	verifyBuf = 1 << 20
)

// Delivery is a stored ciphertext opened for a recipient. It reads like the file
// (io.ReadSeeker for HTTP, io.ReaderAt for SFTP), except that reads of the bytes
// from Tail on wait until the background check of the whole file has passed,
// and fail if it did not.
type Delivery struct {
	id    string
	guard deliveryGuard   // stops the delivery once its transfer may not go out (cut.go)
	live  *liveDeliveries // where it is registered while open
	f     store.Blob
	size  int64
	tail  int64 // reads ending after this offset wait for the verdict
	done  chan struct{}
	err   error   // the verdict, once done is closed
	win   *window // what the check read last (deliveries checked while served)

	stop     context.CancelFunc
	mu       sync.Mutex
	pos      int64 // the file offset Read uses
	closeErr error
	closed   bool
}

// Size is the ciphertext's size in bytes.
func (d *Delivery) Size() int64 { return d.size }

// wait returns the verdict of the check, waiting for it.
func (d *Delivery) wait() error {
	<-d.done
	return d.err
}

// ReadAt reads like os.File.ReadAt, holding back the last bytes until verified.
func (d *Delivery) ReadAt(p []byte, off int64) (int, error) {
	if err := d.mayGoOn(); err != nil {
		return 0, err
	}
	if off+int64(len(p)) > d.tail {
		if err := d.waitTail(); err != nil {
			return 0, err
		}
	}
	return d.readAt(p, off)
}

// waitTail waits for the verdict, letting the check run to it at full speed.
func (d *Delivery) waitTail() error {
	if d.win != nil {
		d.win.toVerdict()
	}
	return d.wait()
}

// readAt reads from the check's window where it can, else from the file
// (directly, for a delivery read past the page cache by its check).
func (d *Delivery) readAt(p []byte, off int64) (int, error) {
	if d.win != nil {
		if n, ok := d.win.read(p, off); ok {
			if n < len(p) {
				return n, io.EOF
			}
			return n, nil
		}
		return readMissed(d.f, p, off)
	}
	return d.f.ReadAt(p, off)
}

// Read reads like os.File.Read, holding back the last bytes until verified.
func (d *Delivery) Read(p []byte) (int, error) {
	if err := d.mayGoOn(); err != nil {
		return 0, err
	}
	d.mu.Lock()
	pos := d.pos
	d.mu.Unlock()
	if pos+int64(len(p)) > d.tail {
		if err := d.waitTail(); err != nil {
			return 0, err
		}
	}
	n, err := d.readAt(p, pos)
	d.mu.Lock()
	d.pos = pos + int64(n)
	d.mu.Unlock()
	if err == nil && n < len(p) {
		err = io.EOF
	}
	if n > 0 && err == io.EOF && pos+int64(n) < d.size {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (d *Delivery) Seek(offset int64, whence int) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		offset += d.pos
	case io.SeekEnd:
		offset += d.size
	}
	if offset < 0 {
		return d.pos, errors.New("transfer: seek before the start of the ciphertext")
	}
	d.pos = offset
	return offset, nil
}

// Close stops the check if it still runs and closes the file.
func (d *Delivery) Close() error {
	if d.live != nil {
		d.live.remove(d)
	}
	d.stop()
	<-d.done
	if d.win != nil {
		d.win.release()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed, d.closeErr = true, d.f.Close()
	}
	return d.closeErr
}

// Check names who checks a delivery from byte 0 against the signed manifest.
type Check int

const (
	// CheckByGateway: the gateway hashes what it serves (see Delivery). For
	// every client that does not say it checks (SFTP gets, curl).
	CheckByGateway Check = iota
	// CheckByRecipient: the recipient hashes the whole ciphertext itself,
	// keeps nothing unless it matches, and reports a mismatch
	// (ReportMismatch), which the gateway answers by checking its stored copy.
	// The delivery is served through the same window, unhashed and with
	// nothing held back, sparing the gateway a SHA-256 of every byte it
	// serves to lex.
	CheckByRecipient
)

// deliver wraps f, the stored ciphertext of t, for a delivery starting at from:
// checked now (small files), checked while served (large ones), or not at all
// (a range that does not start at 0, or check is CheckByRecipient).
func (s *Service) deliver(ctx context.Context, caller string, t *store.Transfer, f store.Blob, from int64, check Check) (*Delivery, error) {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	d := &Delivery{id: t.ID, f: f, size: t.CiphertextSize, tail: t.CiphertextSize, done: make(chan struct{}), stop: stop}
	d.guard.ctx, d.guard.check = bg, s.stillDeliverable(t.ID)
	d.guard.next.Store(time.Now().Add(deliveryRecheck).UnixNano())
	switch {
	case from != 0:
		close(d.done)
	case check == CheckByRecipient:
		d.tail = math.MaxInt64 // nothing held back: no verdict to wait for
		d.win = newWindow(t.CiphertextSize)
		go func() {
			defer close(d.done)
			d.err = d.win.pass(bg, f)
		}()
	case t.CiphertextSize <= inlineVerifyMax:
		d.err = s.verifyStored(ctx, caller, t, f)
		close(d.done)
		if d.err != nil {
			stop()
			return nil, d.err
		}
	default:
		d.tail = t.CiphertextSize - holdBack
		d.win = newWindow(t.CiphertextSize)
		go func() {
			defer close(d.done)
			d.err = s.checkServed(bg, caller, t, f, d.win)
		}()
	}
	d.live = &s.deliveries
	d.live.add(d)
	return d, nil
}

// verifyStored re-hashes the whole stored ciphertext f of t and compares it with
// the SHA-256 of the signed manifest; on a mismatch it quarantines the transfer.
// A read that fails (the delivery was closed, ctx ended) is an error but no
// verdict on the file: nothing is quarantined.
func (s *Service) verifyStored(ctx context.Context, caller string, t *store.Transfer, f store.Blob) error {
	h := sha256.New()
	buf := make([]byte, verifyBuf)
	var n int64
	for n <= t.CiphertextSize {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("transfer: check of %s stopped: %w", t.ID, err)
		}
		k, err := f.ReadAt(buf, n)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("transfer: read stored ciphertext of %s: %w", t.ID, err)
		}
	}
	return s.verdict(ctx, caller, t, n, h.Sum(nil))
}

// verdict compares the n bytes with SHA-256 sum read from the stored ciphertext
// of t with its signed manifest; on a mismatch it quarantines the transfer.
func (s *Service) verdict(ctx context.Context, caller string, t *store.Transfer, n int64, sum []byte) error {
	if n == t.CiphertextSize && hex.EncodeToString(sum) == t.CiphertextSHA256 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	s.log.ErrorContext(ctx, "stored ciphertext differs from its signed manifest; transfer quarantined", "transfer", t.ID, "bytes", n)
	if err := s.quarantineOnce(ctx, caller, t); err != nil {
		return err
	}
	return fmt.Errorf("%w: the stored ciphertext of %s changed since its upload; the transfer is quarantined", ErrHashMismatch, t.ID)
}

// quarantineOnce quarantines t after a failed integrity check at delivery and
// logs it once: of replicas finding the same damage at once, one logs it.
func (s *Service) quarantineOnce(ctx context.Context, caller string, t *store.Transfer) error {
	unlock, err := s.store.Lock(ctx, "transfer/"+t.ID)
	if err != nil {
		return fmt.Errorf("transfer: quarantine %s: %w", t.ID, err)
	}
	defer unlock()
	first, err := s.store.QuarantineOnce(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("transfer: quarantine %s: %w", t.ID, err)
	}
	// The other downloads of it (parallel ranges, other recipients) stop too.
	s.deliveries.cut(t.ID, fmt.Errorf("%w: the stored ciphertext of %s changed since its upload; the transfer is quarantined", ErrHashMismatch, t.ID))
	if _, logged := s.audit.Find(audit.LookupQuarantine(t.ID)); first || !logged {
		ev := transferEvent(audit.KindQuarantined, caller, t)
		ev.Detail = "the stored ciphertext no longer matches the signed manifest's SHA-256; found at delivery"
		if _, err := s.Audit(ctx, ev); err != nil {
			s.log.ErrorContext(ctx, "quarantine not logged", "transfer", t.ID, "err", err)
		}
	}
	return nil
}
