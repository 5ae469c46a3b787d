//go:build !race

package kcp

// This file is left out under -race: there sync.Pool drops items at random
// by design, so memory taken from the pools allocates.

import "testing"

// TestTrimWakeAllocs: a core that is trimmed after every exchange, as a
// session parking between pings is, takes its memory back from the shared
// pools: once they are warm, a wake costs no allocation.
func TestTrimWakeAllocs(t *testing.T) {
	a, b := newPair(presetFast3, false, 128)
	p := newPipe(a, b)
	msg := make([]byte, 64)
	buf := make([]byte, 4096)
	now := uint32(0)
	cycle := func() {
		now += 10
		if n := roundTrip(a, b, p, msg, buf, now); n != len(msg) {
			t.Fatalf("round trip returned %d", n)
		}
		now += 10
		a.flush(now, IKCP_FLUSH_FULL)
		p.to(0, b, now)
		a.trim()
		b.trim()
	}
	for range 100 {
		cycle()
	}
	// AllocsPerRun truncates the average: a GC emptying the pools once
	// during the runs does not fail the test, an allocation per wake does.
	if allocs := testing.AllocsPerRun(200, cycle); allocs != 0 {
		t.Fatalf("%v allocations per wake, want 0", allocs)
	}
}
