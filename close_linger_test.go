package kcp

// Close lingers: it returns once what was written is acknowledged and the
// close signal answered (or the link failed, or the linger bound passed), so
// a program that writes, closes and exits loses nothing.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// closeExitEnv carries the child's orders: "addr bytes preset linger_ms
// chunk".
const closeExitEnv = "KCPX_CLOSE_EXIT"

// closeExitData is the stream the child writes: seeded, so the parent can
// hash what it expects without receiving it from the child.
func closeExitData(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'k', 'c', 'p', 'x'})
	r.Read(b)
	return b
}

// TestCloseExitHelper is the child process of TestCloseExitLosesNothing:
// it dials, writes, closes and exits at once, as a program returning from
// main does. Run without closeExitEnv it does nothing.
func TestCloseExitHelper(t *testing.T) {
	spec := os.Getenv(closeExitEnv)
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[1])
	lingerMs, _ := strconv.Atoi(f[3])
	chunk, _ := strconv.Atoi(f[4])
	s, err := DialWithOptions(f[0], nil, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(2)
	}
	if f[2] == "fast" {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(1024, 1024)
	}
	if lingerMs >= 0 {
		s.SetLinger(time.Duration(lingerMs) * time.Millisecond)
	}
	data := closeExitData(n)
	for off := 0; off < len(data); off += chunk {
		if _, err := s.Write(data[off:min(off+chunk, len(data))]); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(2)
		}
	}
	start := time.Now()
	err = s.Close()
	fmt.Fprintf(os.Stderr, "close: %v after %v\n", err, time.Since(start).Round(time.Millisecond))
	os.Exit(0)
}

// TestCloseExitLosesNothing: a child process writes, calls Close and exits
// right after; the parent must read every byte, then io.EOF.
func TestCloseExitLosesNothing(t *testing.T) {
	cases := []struct {
		name     string
		n        int
		preset   string
		lingerMs int // -1: the default
		chunk    int // bytes per Write
	}{
		// The bound is not what is tested here: a loaded box may take
		// seconds to move 20 MiB, so the child lingers long enough.
		{"fast-20MiB", 20 << 20, "fast", 60_000, 64 << 10},
		// One Write queues it all at once: Close waits for all of it.
		{"fast-20MiB-one-write", 20 << 20, "fast", 60_000, 20 << 20},
		// kcp-go's defaults (windows of 32, 100 ms interval) and the
		// default linger: what one second of such a transfer moves.
		{"defaults-256KiB", 256 << 10, "default", -1, 64 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			l, err := ListenWithOptions("127.0.0.1:0", nil, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCloseExitHelper$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s %d %d", closeExitEnv, l.Addr(), c.n, c.preset, c.lingerMs, c.chunk))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			l.SetDeadline(time.Now().Add(30 * time.Second))
			s, err := l.AcceptKCP()
			if err != nil {
				t.Fatalf("accept: %v (child: %v, %s)", err, <-exited, stderr.String())
			}
			defer s.Close()
			if c.preset == "fast" {
				s.SetNoDelay(1, 10, 2, 1)
				s.SetWindowSize(1024, 1024)
			}
			// Once the child is gone, silence ends the read: the listener's
			// socket hears no ICMP error.
			s.SetIdleTimeout(5 * time.Second)
			h := sha256.New()
			s.SetReadDeadline(time.Now().Add(90 * time.Second))
			got, err := io.Copy(h, s) // until io.EOF (nil here) or an error
			werr := <-exited
			t.Logf("child: %s", strings.TrimSpace(stderr.String()))
			if werr != nil {
				t.Fatalf("child: %v", werr)
			}
			if err != nil {
				t.Fatalf("read %d of %d bytes, then %v (want io.EOF)", got, c.n, err)
			}
			if got != int64(c.n) {
				t.Fatalf("read %d bytes then io.EOF, want %d", got, c.n)
			}
			if want := sha256.Sum256(closeExitData(c.n)); string(h.Sum(nil)) != string(want[:]) {
				t.Fatal("the bytes read differ from those written")
			}
		})
	}
}

// TestCloseGonePeerBounded: with data the peer never acknowledges, Close
// returns once the linger bound passes; with SetLinger(0), at once.
func TestCloseGonePeerBounded(t *testing.T) {
	leakCheck(t)
	for _, linger := range []time.Duration{300 * time.Millisecond, 0} {
		n := newMemNet(31)
		a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
		fast(a)
		roundTripPair(t, a, b, []byte("ping"))
		n.setCut(true) // the peer is gone: nothing it could answer arrives
		b.SetLinger(0)
		b.Close()
		if _, err := a.Write(make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		a.SetLinger(linger)
		start := time.Now()
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		took := time.Since(start)
		t.Logf("linger %v: Close returned after %v", linger, took)
		// The session's clock counts whole milliseconds from a start it
		// truncated: the bound it sets may fall up to 1 ms early.
		if took < linger-time.Millisecond {
			t.Errorf("linger %v: Close returned after %v, before the bound", linger, took)
		}
		if took > linger+2*time.Second {
			t.Errorf("linger %v: Close returned after %v", linger, took)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: %v, want net.ErrClosed", err)
		}
	}
}

// TestCloseWakesBlockedCalls: Close wakes a blocked Read and a blocked
// Write at once, although Close itself waits for the unacknowledged data.
func TestCloseWakesBlockedCalls(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	n := newMemNet(32)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer b.Close()
	fast(a)
	a.SetWindowSize(4, 4)
	roundTripPair(t, a, b, []byte("ping"))
	n.setCut(true) // nothing is acknowledged: the send window fills and stays full
	a.SetLinger(time.Minute)
	errs := make(chan error, 2)
	go func() {
		_, err := a.Read(make([]byte, 10))
		errs <- err
	}()
	go func() {
		for {
			if _, err := a.Write(make([]byte, 1000)); err != nil {
				errs <- err
				return
			}
		}
	}()
	// The writer blocks once the window is full; wait for that.
	waitFor(t, 10*time.Second, "a full send window", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.kcp.writable()
	})
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call: %v, want net.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a blocked call was not woken by Close")
		}
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with data unacknowledged and the linger bound far", err)
	default:
	}
	// Healing the link lets the data through: Close returns.
	n.setCut(false)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return once the peer acknowledged")
	}
}

// TestCloseBeforeAnyData: two sessions that close one after the other
// before any data crossed are both released within a second or so, not at
// the 5 s linger bound. Neither can prove a close token to the other (no
// PUSH went either way), so each used to ignore the other's FIN and
// FINACK and linger to the bound; a closing session with nothing to
// deliver now takes them.
func TestCloseBeforeAnyData(t *testing.T) {
	leakCheck(t)
	n := newMemNet(72)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	released := func(s *UDPSession) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.released
	}
	start := time.Now()
	a.Close() // a's FIN reaches b, which is open and ignores it: b has heard a
	waitFor(t, 5*time.Second, "b to hear a's FIN", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.heard
	})
	b.Close()
	if !eventually(defaultLinger-time.Second, func() bool { return released(a) && released(b) }) {
		t.Fatalf("after %v: released a %v, b %v; want both well before the %v linger bound",
			time.Since(start), released(a), released(b), defaultLinger)
	}
	t.Logf("both released after %v", time.Since(start))
}
