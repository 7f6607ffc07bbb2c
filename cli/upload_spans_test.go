package cli

import (
	"reflect"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

func TestMissingSpans(t *testing.T) {
	for _, c := range []struct {
		size, off int64
		held      []api.Span
		want      []api.Span
	}{
		{100, 0, nil, []api.Span{{Start: 0, End: 100}}},
		{100, 100, nil, nil},
		{100, 10, []api.Span{{Start: 20, End: 30}, {Start: 90, End: 100}}, []api.Span{{Start: 10, End: 20}, {Start: 30, End: 90}}},
		{100, 10, []api.Span{{Start: 50, End: 60}}, []api.Span{{Start: 10, End: 50}, {Start: 60, End: 100}}},
	} {
		if got := missing(c.size, c.off, c.held); !reflect.DeepEqual(got, c.want) {
			t.Errorf("missing(%d, %d, %v) = %v, want %v", c.size, c.off, c.held, got, c.want)
		}
	}
	got := split([]api.Span{{Start: 0, End: 10}, {Start: 20, End: 25}}, 4)
	want := []api.Span{{Start: 0, End: 4}, {Start: 4, End: 8}, {Start: 8, End: 10}, {Start: 20, End: 24}, {Start: 24, End: 25}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("split = %v, want %v", got, want)
	}
}

// TestUploadStreams: parallel ranges only for a large upload to a far gateway
// over TCP, unless --streams says otherwise.
func TestUploadStreams(t *testing.T) {
	for _, c := range []struct {
		bulk  string
		want  int
		left  int64
		reply time.Duration
		flag  int
	}{
		{TransportTCP, 4, 256 << 20, 150 * time.Millisecond, 0},
		{TransportTCP, 1, 256 << 20, time.Millisecond, 0},      // loopback, LAN
		{TransportTCP, 1, 16 << 20, 150 * time.Millisecond, 0}, // small
		{TransportQUIC, 1, 256 << 20, 150 * time.Millisecond, 0},
		{TransportQUIC, 3, 1 << 20, time.Millisecond, 3}, // --streams
	} {
		cl := &Client{}
		cl.ep.Store(&endpoint{transport: c.bulk})
		s := &sender{c: cl, o: &sendOptions{streams: c.flag}}
		if got, why := s.uploadStreams(c.left, c.reply); got != c.want || why == "" {
			t.Errorf("%s, %d bytes, reply %v, --streams %d: %d streams (%s), want %d", c.bulk, c.left, c.reply, c.flag, got, why, c.want)
		}
	}
}
