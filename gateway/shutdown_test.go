package gateway_test

import (
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// slowUpload starts a PATCH whose body the test feeds by hand. It returns the pipe
// to write the body into and a channel with the reply's status (0 on a transport error).
func slowUpload(c *apiClient, id string, off int64) (*io.PipeWriter, chan int) {
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, "https://"+c.env.Addr+api.PathTransfer+id+"/content", pr)
		req.Header.Set(api.HeaderUploadOffset, strconv.FormatInt(off, 10))
		req.Header.Set("Content-Type", api.ContentTypeChunk)
		resp, err := c.http.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return pw, done
}

// TestShutdownLetsUploadsFinish: on shutdown, an upload in flight that ends within
// the grace period completes and is deliverable.
func TestShutdownLetsUploadsFinish(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.ShutdownGrace = 20 * time.Second }))
			alice := newAPIClient(t, env, gatewaytest.Alice, tr.quic)
			team := newAPIClient(t, env, gatewaytest.Team, tr.quic)
			ct := encrypt(t, make([]byte, 4<<20), team.register().Recipient())
			st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d %+v", st, e)
			}
			pw, done := slowUpload(alice, xfer.ID, 0)
			pw.Write(ct[:len(ct)/2])
			// The PATCH's headers may still be on their way when the body's first
			// half is buffered: wait for the gateway's handler to hold the upload.
			waitFor(t, func() bool { return len(env.SpoolFiles()) > 0 }, "the upload to reach the gateway")
			stopped := make(chan struct{})
			go func() { env.Stop(); close(stopped) }()
			// Shutdown has begun once the gateway no longer accepts connections.
			waitFor(t, func() bool {
				c, err := net.Dial("tcp", env.Addr)
				if err == nil {
					c.Close()
				}
				return err != nil
			}, "the gateway to stop accepting connections")
			select {
			case <-stopped:
				t.Fatal("the gateway stopped with an upload in flight")
			default:
			}
			pw.Write(ct[len(ct)/2:])
			pw.Close()
			if st := <-done; st != http.StatusNoContent {
				t.Fatalf("upload during shutdown: status %d, want 204", st)
			}
			<-stopped
			if s := env.StoreStats(); s.Ready != 1 {
				t.Fatalf("after shutdown: %+v, want the transfer ready", s)
			}
		})
	}
}

// TestShutdownCutUploadResumes: an upload still running when the grace period ends
// is cut; the bytes that arrived are durable, and after a restart the upload
// resumes from there and completes with the right hash.
func TestShutdownCutUploadResumes(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.ShutdownGrace = 300 * time.Millisecond }))
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 4<<20), team.register().Recipient())
	_, xfer, _ := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	pw, done := slowUpload(alice, xfer.ID, 0)
	before := env.StoreStats().SpoolBytes
	pw.Write(ct[:1<<20])
	// The pipe hands the bytes to the client's connection; wait until the
	// gateway has written some of them to the spool.
	waitFor(t, func() bool { return env.StoreStats().SpoolBytes > before }, "the upload's first bytes in the spool")
	env.Restart() // grace runs out: the connection is cut
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done

	alice = newAPIClient(t, env, gatewaytest.Alice, false)
	st, _, h := alice.do(http.MethodHead, api.PathTransfer+xfer.ID+"/content", nil, nil)
	off, _ := strconv.ParseInt(h.Get(api.HeaderUploadOffset), 10, 64)
	if st != http.StatusNoContent || off <= 0 || off > 1<<20 {
		t.Fatalf("after restart: %d offset %d, want the bytes that arrived kept", st, off)
	}
	if st, b, _ := alice.upload(xfer.ID, off, ct[off:]); st != http.StatusNoContent {
		t.Fatalf("resume: %d %s", st, b)
	}
	team = newAPIClient(t, env, gatewaytest.Team, false)
	st, got, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil)
	if st != http.StatusOK || sha256.Sum256(got) != sha256.Sum256(ct) {
		t.Fatalf("download after resume: %d", st)
	}
}
