package kcp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// parkedFor reports whether s is parked with its next update at least d
// ahead.
func parkedFor(s *UDPSession, d uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parked.Load() && int32(s.schedAt-s.kcp.clock()) >= int32(d)
}

// TestIdleSessionParks: once a message is delivered and acknowledged, both
// ends stop updating every interval (10 ms here) and sleep for long.
func TestIdleSessionParks(t *testing.T) {
	leakCheck(t)
	n := newMemNet(31)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	fast(b)
	roundTripPair(t, a, b, []byte("ping"))
	roundTripPair(t, b, a, []byte("pong"))
	waitFor(t, 5*time.Second, "both ends parked", func() bool {
		return parkedFor(a, parkMax/2) && parkedFor(b, parkMax/2)
	})
}

// TestParkedSessionWakes: data reaching a parked session unparks it at once,
// so its ACK leaves one interval later, not when the parked update would
// have run; a Write on a parked session is sent and retransmitted on the
// interval again.
func TestParkedSessionWakes(t *testing.T) {
	leakCheck(t)
	n := newMemNet(32)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	fast(b)
	for i := range 3 {
		roundTripPair(t, a, b, []byte("warm"))
		waitFor(t, 5*time.Second, "both ends parked", func() bool {
			return parkedFor(a, parkMax/2) && parkedFor(b, parkMax/2)
		})
		start := time.Now()
		msg := []byte("after parking")
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		// Nothing can park it again before b's ACK arrives, at least two
		// intervals from now.
		if a.parked.Load() {
			t.Fatalf("round %d: the writer is still parked after Write", i)
		}
		buf := make([]byte, len(msg))
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(b, buf); err != nil || !bytes.Equal(buf, msg) {
			t.Fatalf("round %d: read %q, %v", i, buf, err)
		}
		waitFor(t, 5*time.Second, "the reader's ACK", func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.kcp.WaitSnd() == 0
		})
		if d := time.Since(start); d > parkMax/2*time.Millisecond {
			t.Fatalf("round %d: ACK after %v: it waited for the parked update", i, d)
		}
	}
}

// TestParkedSessionIdleTimeout: a parked session with an idle timeout
// sleeps only until the timeout falls due, not for the whole park time.
func TestParkedSessionIdleTimeout(t *testing.T) {
	leakCheck(t)
	n := newMemNet(33)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	defer a.Close()
	fast(a)
	a.SetIdleTimeout(200 * time.Millisecond)
	roundTripPair(t, b, a, []byte("ping"))
	b.SetLinger(100 * time.Millisecond) // its FIN cannot cross the cut link
	n.setCut(true)
	start := time.Now()
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Read(make([]byte, 10)); !errors.Is(err, errIdle) {
		t.Fatalf("Read: %v, want the idle timeout error", err)
	}
	if d := time.Since(start); d >= parkMax*time.Millisecond {
		t.Fatalf("idle timeout reported after %v: the parked update overslept", d)
	}
}

// TestParkDecision covers parkLocked's choice on a bare session (never
// scheduled): it parks only with nothing to do, never past the idle timeout
// or the Accept deadline, and clears the parked flag when it stays active.
func TestParkDecision(t *testing.T) {
	const next = 10
	tests := []struct {
		name      string
		setup     func(s *UDPSession, now uint32)
		expirable bool
		want      uint32
		parked    bool
	}{
		{"quiet", func(*UDPSession, uint32) {}, false, parkMax, true},
		{"data queued", func(s *UDPSession, _ uint32) { s.kcp.Send([]byte("x")) }, false, next, false},
		{"ACK pending", func(s *UDPSession, _ uint32) { s.kcp.acklist = append(s.kcp.acklist, ackItem{}) }, false, next, false},
		{"probe pending", func(s *UDPSession, _ uint32) { s.kcp.probe = IKCP_ASK_TELL }, false, next, false},
		{"closing", func(s *UDPSession, _ uint32) { s.closing = true }, false, next, false},
		{"datagram held back", func(s *UDPSession, _ uint32) { s.txq = append(s.txq, nil) }, false, next, false},
		{"idle timeout ahead", func(s *UDPSession, now uint32) {
			s.idleTimeout, s.lastRecv = 300*time.Millisecond, now-100
		}, false, 201, true},
		{"idle timeout nearly due", func(s *UDPSession, now uint32) {
			s.idleTimeout, s.lastRecv = 300*time.Millisecond, now-295
		}, false, next, false},
		{"Accept deadline ahead", func(s *UDPSession, now uint32) { s.created = now - 4500 }, true, 501, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &UDPSession{kcp: NewKCP(1, func([]byte, int) {}), l: &Listener{pendingTTL: 5 * time.Second}}
			now := uint32(100000)
			s.parked.Store(true) // left from an earlier park
			tc.setup(s, now)
			got := s.parkLocked(now, next, tc.expirable)
			if got != tc.want || s.parked.Load() != tc.parked {
				t.Fatalf("parkLocked = %d, parked %v; want %d, %v", got, s.parked.Load(), tc.want, tc.parked)
			}
			if s.schedAt != now+got {
				t.Fatalf("schedAt %d, want %d", s.schedAt, now+got)
			}
			if !s.staleLocked(now+got-1) || s.staleLocked(now+got) {
				t.Fatal("a run before schedAt must be stale, one at schedAt not")
			}
		})
	}
}
