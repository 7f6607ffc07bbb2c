package sftpfront

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// packet frames an SFTP packet: length, type, body.
func packet(typ byte, body ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func sshString(s string) []byte { return append(u32(uint32(len(s))), s...) }

// readThrough reads everything from in through a limitsReader in small reads
// (as pkg/sftp reads: a length, then the rest), and returns what passed and
// the replies it made.
func readThrough(t testing.TB, in []byte) (passed []byte, replies [][]byte) {
	l := &limitsReader{r: bytes.NewReader(in), reply: func(p []byte) error {
		replies = append(replies, p)
		return nil
	}}
	buf := make([]byte, 7)
	for {
		n, err := l.Read(buf)
		passed = append(passed, buf[:n]...)
		if err == io.EOF {
			return passed, replies
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("Read: %v", err)
		}
		if err != nil {
			return passed, replies
		}
	}
}

// TestLimitsReader: the limits request is answered (its id, pkg/sftp's limits)
// and kept from pkg/sftp; every other packet, extended or not, passes through
// byte for byte, as does a stream cut in the middle of a packet.
func TestLimitsReader(t *testing.T) {
	initPkt := packet(1, u32(3))
	read := packet(5, u32(7), sshString("h1"), make([]byte, 8), u32(32768))
	rename := packet(fxpExtended, u32(8), sshString("posix-rename@openssh.com"), sshString("/a"), sshString("/b"))
	limits := packet(fxpExtended, u32(9), sshString(extLimits))
	big := packet(6, u32(10), sshString("h1"), make([]byte, 8), sshString(string(make([]byte, 100_000))))
	bigExt := packet(fxpExtended, u32(11), sshString("x@example.com"), make([]byte, maxExtended))
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		replies []uint32 // ids answered
	}{
		{"no limits request", cat(initPkt, read, rename, big, bigExt), cat(initPkt, read, rename, big, bigExt), nil},
		{"limits answered", cat(initPkt, limits, read, limits), cat(initPkt, read), []uint32{9, 9}},
		{"cut in a header", cat(initPkt, read[:3]), cat(initPkt, read[:3]), nil},
		{"cut in an extended request", cat(initPkt, rename[:20]), cat(initPkt, rename[:20]), nil},
		{"cut in a limits request", cat(read, limits[:12]), cat(read, limits[:12]), nil},
	} {
		passed, replies := readThrough(t, tc.in)
		if !bytes.Equal(passed, tc.want) {
			t.Errorf("%s: %d bytes passed, want %d", tc.name, len(passed), len(tc.want))
		}
		if len(replies) != len(tc.replies) {
			t.Errorf("%s: %d replies, want %d", tc.name, len(replies), len(tc.replies))
			continue
		}
		for i, r := range replies {
			if want := limitsReply(tc.replies[i]); !bytes.Equal(r, want) {
				t.Errorf("%s: reply %x, want %x", tc.name, r, want)
			}
		}
	}
	r := limitsReply(9)
	if len(r) != 4+1+4+32 || r[4] != fxpExtendedReply || binary.BigEndian.Uint64(r[17:]) != limitRead ||
		limitRead > maxTxPacket || binary.BigEndian.Uint64(r[9:]) != limitPacket {
		t.Errorf("limits reply %x", r)
	}
}

func cat(ps ...[]byte) []byte { return bytes.Join(ps, nil) }

// TestVersionWithLimits: the VERSION packet gains the extension and keeps
// pkg/sftp's own; other packets are not taken for one.
func TestVersionWithLimits(t *testing.T) {
	v := packet(fxpVersion, u32(3), sshString("hardlink@openssh.com"), sshString("1"))
	if !isVersion(v) || isVersion(v[:len(v)-1]) || isVersion(packet(101, u32(1), u32(0))) {
		t.Fatal("isVersion")
	}
	got := withLimits(v)
	want := packet(fxpVersion, u32(3), sshString("hardlink@openssh.com"), sshString("1"), sshString(extLimits), sshString("1"))
	if !bytes.Equal(got, want) {
		t.Fatalf("withLimits = %x, want %x", got, want)
	}
}

// FuzzLimitsReader: whatever a client sends, the reader does not fail or
// panic, and a stream with no limits request passes through unchanged.
func FuzzLimitsReader(f *testing.F) {
	f.Add(cat(packet(1, u32(3)), packet(fxpExtended, u32(9), sshString(extLimits))))
	f.Add(packet(fxpExtended, u32(8), sshString("posix-rename@openssh.com"), sshString("/a"), sshString("/b")))
	f.Add([]byte{0, 0, 0, 0, fxpExtended, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		passed, _ := readThrough(t, in)
		if !bytes.Contains(in, []byte(extLimits)) && !bytes.Equal(passed, in) {
			t.Fatalf("%x passed as %x", in, passed)
		}
		if len(passed) > len(in) {
			t.Fatalf("%d bytes in, %d out", len(in), len(passed))
		}
	})
}
