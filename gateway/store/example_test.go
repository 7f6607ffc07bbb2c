package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

// A sender uploads ciphertext in two chunks, sends the second one to the
// wrong offset first, and the recipient then reads and acknowledges it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lexgate-store")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	const (
		sender    = "spiffe://harbor-law.example/paralegal/alice"
		recipient = "spiffe://manila-lpo.example/site/review-team"
	)
	ciphertext := "age-encryption.org/v1 ... (ciphertext)"
	sum := sha256.Sum256([]byte(ciphertext))
	manifest := sha256.Sum256([]byte("signed manifest"))
	t := &store.Transfer{
		Sender:           sender,
		Recipients:       []string{recipient},
		Matter:           "M-2025-0042",
		CiphertextSize:   int64(len(ciphertext)),
		CiphertextSHA256: hex.EncodeToString(sum[:]),
		ManifestHash:     hex.EncodeToString(manifest[:]),
	}
	if err := s.CreateTransfer(ctx, t); err != nil {
		log.Fatal(err)
	}

	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	off, _ := s.WriteAt(ctx, t.ID, 0, strings.NewReader(ciphertext[:10]), now)
	fmt.Println("durable offset:", off)

	_, err = s.WriteAt(ctx, t.ID, 0, strings.NewReader(ciphertext[10:]), now)
	var oe *store.OffsetError
	if errors.As(err, &oe) {
		fmt.Println("resume from:", oe.Expected)
		off, err = s.WriteAt(ctx, t.ID, oe.Expected, strings.NewReader(ciphertext[oe.Expected:]), now)
	}
	fmt.Println("durable offset:", off, err)

	inbox, _ := s.Inbox(ctx, recipient)
	for _, in := range inbox {
		f, err := s.Open(ctx, in.ID)
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(store.NewBlobStream(f))
		f.Close()
		fmt.Printf("%s: %d bytes, %s\n", in.Matter, len(b), in.State)
		s.Ack(ctx, in.ID, recipient, now.Add(time.Hour))
	}
	inbox, _ = s.Inbox(ctx, recipient)
	fmt.Println("left in inbox:", len(inbox))

	// Output:
	// durable offset: 10
	// resume from: 10
	// durable offset: 38 <nil>
	// M-2025-0042: 38 bytes, ready
	// left in inbox: 0
}
