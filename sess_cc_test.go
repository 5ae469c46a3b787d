package kcp

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestSessionCongestionControl: every controller carries data whole over a
// lossy in-memory link; an unknown name is refused with the exported error
// and leaves the controller alone.
func TestSessionCongestionControl(t *testing.T) {
	leakCheck(t)
	for _, cc := range []string{CongestionBBR, CongestionCUBIC, CongestionNone, CongestionKCP} {
		t.Run(cc, func(t *testing.T) {
			n := newMemNet(61)
			a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
			defer a.Close()
			defer b.Close()
			fast(a)
			fast(b)
			if err := a.SetCongestionControl(cc); err != nil {
				t.Fatal(err)
			}
			if err := a.SetCongestionControl("vegas"); !errors.Is(err, ErrUnknownCongestionControl) {
				t.Fatalf("unknown name: %v", err)
			}
			if got := a.CongestionControl(); got != cc {
				t.Fatalf("CongestionControl() = %q, want %q", got, cc)
			}
			n.setLoss(0.05)
			sendRecv(t, a, b, randBytes(62, 1<<20))
		})
	}
}

// TestWriteBackpressure: a sender with a send window far larger than what
// the peer takes (the peer never reads) blocks in Write once the write
// bound is queued beyond the window, and the write deadline ends the wait
// with a timeout; kcp-go would have queued its whole send window.
func TestWriteBackpressure(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, cc := range []string{CongestionBBR, CongestionKCP} {
		t.Run(cc, func(t *testing.T) {
			n := newMemNet(63)
			a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
			defer a.Close()
			defer b.Close()
			a.SetNoDelay(1, 10, 2, 0)
			a.SetWindowSize(8192, 128)
			b.SetWindowSize(128, 128)
			if err := a.SetCongestionControl(cc); err != nil {
				t.Fatal(err)
			}
			const bound = 256 << 10
			a.SetWriteQueueLimit(bound)
			chunk := make([]byte, 32<<10)
			a.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			written := 0
			var err error
			for written < 64<<20 {
				var n int
				n, err = a.Write(chunk)
				written += n
				if err != nil {
					break
				}
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after %d bytes, Write: %v, want a timeout", written, err)
			}
			// what the peer's window took, the bound, and one Write
			limit := 2*128*a.kcp.segmentSize() + bound + len(chunk)
			if written > limit {
				t.Fatalf("Write queued %d bytes, want at most %d", written, limit)
			}
			t.Logf("%s: Write blocked after %d bytes", cc, written)
		})
	}
}
