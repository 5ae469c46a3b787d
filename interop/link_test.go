package interop

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// TestLinkShapesTraffic checks that the lossy link drops and duplicates at
// the configured rates, delivers nothing early, delivers in arrival order,
// copies what it is given, and repeats itself for a given seed.
func TestLinkShapesTraffic(t *testing.T) {
	base := time.Unix(1000, 0)
	now := base
	clock := func() time.Time { return now }
	run := func(seed uint64) ([]byte, LinkStats) {
		now = base
		l := NewLink(LinkConfig{Loss: 0.2, Dup: 0.1, Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Seed: seed}, clock)
		buf := make([]byte, 2)
		for i := range 10000 {
			buf[0], buf[1] = byte(i), byte(i>>8)
			l.Output(buf, 2)
			buf[0] = 0xff // the link must have copied
		}
		if n := l.Deliver(base.Add(9*time.Millisecond), func([]byte) {}); n != 0 {
			t.Fatalf("%d datagrams delivered before the base delay", n)
		}
		var order []byte
		l.Deliver(base.Add(time.Second), func(p []byte) {
			order = append(order, p...)
		})
		if l.Pending() != 0 {
			t.Fatalf("%d datagrams still pending", l.Pending())
		}
		return order, l.Stats()
	}
	a, sa := run(1)
	b, _ := run(1)
	c, _ := run(2)
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave a different delivery")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same delivery")
	}
	if math.Abs(float64(sa.Dropped)/float64(sa.Sent)-0.2) > 0.02 {
		t.Fatalf("dropped %d of %d, want about 20%%", sa.Dropped, sa.Sent)
	}
	kept := sa.Sent - sa.Dropped
	if math.Abs(float64(sa.Duplicated)/float64(kept)-0.1) > 0.02 {
		t.Fatalf("duplicated %d of %d, want about 10%%", sa.Duplicated, kept)
	}
	if sa.Delivered != kept+sa.Duplicated || uint64(len(a)) != 2*sa.Delivered {
		t.Fatalf("delivered %d datagrams (%d bytes), want %d", sa.Delivered, len(a), kept+sa.Duplicated)
	}
	reordered := false
	distinct := map[int]bool{}
	for i := 0; i < len(a); i += 2 {
		id := int(a[i]) | int(a[i+1])<<8
		distinct[id] = true
		if i > 0 && id < int(a[i-2])|int(a[i-1])<<8 {
			reordered = true
		}
	}
	if uint64(len(distinct)) != kept {
		t.Fatalf("%d distinct datagrams delivered, want %d: the link did not copy what it was given", len(distinct), kept)
	}
	if !reordered {
		t.Fatal("20 ms of jitter never reordered two datagrams")
	}
}
