package kcp

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// trimmedHeld returns what of its working memory a core still holds after
// trim, as a description, or "" when it holds none of it.
func trimmedHeld(k *KCP) string {
	switch {
	case len(k.free) != 0 || len(k.freeSmall) != 0:
		return "payload free list"
	case k.buffer != nil:
		return "flush buffer"
	case k.sndQueue.buf != nil || k.sndBuf.buf != nil || k.rcvQueue.buf != nil:
		return "segment ring"
	case k.rcvBuf.seg != nil || k.rcvBuf.have != nil:
		return "reorder slots"
	}
	return ""
}

// TestTrimReleasesAndRegrows: a quiet core gives back its buffers, rings,
// slots and flush buffer; afterwards it still exchanges data both ways, and
// segments arriving out of order grow the reorder slots again (from none)
// and are delivered in order.
func TestTrimReleasesAndRegrows(t *testing.T) {
	a, b := newPair(presetFast3, false, 128)
	p := newPipe(a, b)
	buf := make([]byte, 8192)
	now := uint32(0)
	// Reorder slots are taken only when a segment arrives out of order.
	if b.rcvBuf.seg != nil {
		t.Fatalf("a new core holds %d reorder slots", len(b.rcvBuf.seg))
	}
	for i := range 20 {
		now += 10
		msg := bytes.Repeat([]byte{byte(i)}, 100+i*200)
		if n := roundTrip(a, b, p, msg, buf, now); n != len(msg) || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("warm-up %d: got %d bytes", i, n)
		}
	}
	now += 10
	a.flush(now, IKCP_FLUSH_FULL) // the last ACKs
	p.to(0, b, now)
	if !a.quiet() || !b.quiet() {
		t.Fatal("the pair is not quiet after the exchange")
	}
	if len(a.free)+len(a.freeSmall) == 0 {
		t.Fatal("no payload buffers held before trim: the test proves nothing")
	}
	for _, k := range []*KCP{a, b} {
		k.trim()
		if what := trimmedHeld(k); what != "" {
			t.Fatalf("after trim the core still holds its %s", what)
		}
	}

	// Both ways again, after the trim.
	for i := range 3 {
		now += 10
		msg := bytes.Repeat([]byte{'x' + byte(i)}, 3000)
		if n := roundTrip(a, b, p, msg, buf, now); n != len(msg) || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("after trim, round trip %d: got %d bytes", i, n)
		}
		now += 10
		b.Send(msg[:77]) // b speaks first
		b.flush(now, IKCP_FLUSH_FULL)
		p.to(1, a, now)
		if n := a.Recv(buf); n != 77 {
			t.Fatalf("after trim, b to a %d: got %d bytes", i, n)
		}
	}
	now += 10
	a.flush(now, IKCP_FLUSH_FULL)
	p.to(0, b, now)
	b.flush(now, IKCP_FLUSH_FULL)
	p.to(1, a, now)
	a.trim()
	b.trim()

	// Out of order after trim: five one-segment messages, delivered last
	// first. The later ones wait in reorder slots grown from none.
	now += 10
	for i := range 5 {
		a.Send(bytes.Repeat([]byte{byte('A' + i)}, 1000))
	}
	a.flush(now, IKCP_FLUSH_FULL)
	if p.n[0] != 5 {
		t.Fatalf("%d datagrams for 5 segments", p.n[0])
	}
	for i := p.n[0] - 1; i >= 0; i-- {
		b.input(now, p.bufs[0][i], IKCP_PACKET_REGULAR, false)
		if i == 1 && (len(b.rcvBuf.seg) < 4 || b.rcvBuf.count != 4) {
			t.Fatalf("4 segments out of order: %d slots, %d held", len(b.rcvBuf.seg), b.rcvBuf.count)
		}
	}
	p.n[0] = 0
	if len(b.rcvBuf.seg) > 128 {
		t.Fatalf("%d reorder slots for a window of 128", len(b.rcvBuf.seg))
	}
	for i := range 5 {
		n := b.Recv(buf)
		if n != 1000 || buf[0] != byte('A'+i) || buf[999] != byte('A'+i) {
			t.Fatalf("message %d: %d bytes starting %q", i, n, buf[:1])
		}
	}
	if b.rcvBuf.count != 0 {
		t.Fatalf("%d segments left in the reorder slots", b.rcvBuf.count)
	}
}

// TestParkedSessionTrimmed: a session that parks holds no payload buffers,
// rings or flush buffer; it still carries data both ways after waking.
func TestParkedSessionTrimmed(t *testing.T) {
	leakCheck(t)
	n := newMemNet(33)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	fast(b)
	for i := range 3 {
		roundTripPair(t, a, b, bytes.Repeat([]byte("ping"), 300))
		roundTripPair(t, b, a, []byte("pong"))
		waitFor(t, 5*time.Second, "both ends parked", func() bool {
			return parkedFor(a, parkMax/2) && parkedFor(b, parkMax/2)
		})
		for _, s := range []*UDPSession{a, b} {
			s.mu.Lock()
			what := trimmedHeld(s.kcp)
			s.mu.Unlock()
			if what != "" {
				t.Fatalf("round %d: a parked session holds its %s", i, what)
			}
		}
	}
	msg := bytes.Repeat([]byte("after"), 1000)
	if _, err := b.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(a, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after waking: %v", err)
	}
}
