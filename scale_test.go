package kcp

// Scale and lifecycle: thousands of sessions through one listener leave
// nothing behind, and concurrent Close/Read/Write/SetDeadline/Accept calls
// race cleanly.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relFDs counts this process's open file descriptors.
func relFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting fds: %v", err)
	}
	return len(ents)
}

// TestScaleSessionWaves: sessions in waves on one loopback listener, each
// echoing 64 messages of 64 bytes and closing. Every echo is byte-exact;
// afterwards the goroutines are back to the baseline (+2), the file
// descriptors back to the baseline, the listener holds no session and the
// heap is within 8 MiB of the baseline.
func TestScaleSessionWaves(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fd accounting reads /proc/self/fd")
	}
	total, wave := relPick(1000, 5000), 100
	if raceEnabled {
		total = relPick(300, 5000)
	}
	l, err := ListenWithOptions("127.0.0.1:0", relCFB.block(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	relEchoServer(t, l, relFast)
	warmScheduler()
	// Warm up once so lazily created pools and scheduler workers exist.
	relScaleOne(t, l, 0)
	eventually(10*time.Second, func() bool { s, p := relListenerLoad(l); return s == 0 && p == 0 })
	g0, fd0, heap0 := runtime.NumGoroutine(), relFDs(t), relHeap()

	var failed atomic.Int32
	for w := 0; w < total; w += wave {
		var wg sync.WaitGroup
		for i := w; i < min(w+wave, total); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := relScaleOne(t, l, i+1); err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("session %d: %v", i, err)
					}
				}
			}()
		}
		wg.Wait()
	}
	if failed.Load() > 0 {
		t.Fatalf("%d of %d sessions failed", failed.Load(), total)
	}
	// Closed sessions finish their close handshake in the background, and
	// a parked session's last scheduler entry (up to a second away) holds
	// it until it fires.
	clean := eventually(15*time.Second, func() bool {
		s, p := relListenerLoad(l)
		return s == 0 && p == 0 && runtime.NumGoroutine() <= g0+2 && relFDs(t) <= fd0 &&
			relHeap() <= heap0+8<<20
	})
	s, p := relListenerLoad(l)
	g1, fd1, heap1 := runtime.NumGoroutine(), relFDs(t), relHeap()
	t.Logf("%d sessions in waves of %d: listener %d sessions %d pending; goroutines %d (baseline %d); fds %d (baseline %d); heap %+.2f MiB",
		total, wave, s, p, g1, g0, fd1, fd0, (float64(heap1)-float64(heap0))/(1<<20))
	if s != 0 || p != 0 {
		t.Fatalf("the listener still holds %d sessions and %d pending: ghosts made by late segments of closed conversations (see TestHostileLateSegmentMakesNoSession)", s, p)
	}
	if !clean || heap1 > heap0+8<<20 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("resources not back to the baseline\n%s", buf[:n])
	}
}

// relScaleOne dials l, echoes 64 messages of 64 bytes and closes.
func relScaleOne(t testing.TB, l *Listener, i int) error {
	c, err := DialWithOptions(l.Addr().String(), relCFB.block(t), 0, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	relFast(c)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	data := relData(uint64(i), 64*64)
	for m := range 64 {
		if _, err := c.Write(data[m*64 : (m+1)*64]); err != nil {
			return fmt.Errorf("write %d: %w", m, err)
		}
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != string(data) {
		return errors.New("echo differs")
	}
	return nil
}

// TestScaleCloseRaces: Read, Write, SetDeadline and Accept run while the
// client, the server session and the listener are closed in a random order
// at a random moment. Under -race: no race, no panic, and every call
// returns within 1 s of the last Close.
func TestScaleCloseRaces(t *testing.T) {
	parallelTest(t)
	iters := relPick(100, 2000)
	if raceEnabled {
		iters = relPick(40, 2000)
	}
	// The iterations are independent (a pair each): four runs of a
	// quarter of them go in parallel, each with its own leak check.
	const runs = 4
	for run := range runs {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			parallelTest(t)
			leakCheckSlack(t, 2, 15*time.Second)
			scaleCloseRaces(t, iters/runs)
		})
	}
}

// scaleCloseRaces runs iters iterations of TestScaleCloseRaces.
func scaleCloseRaces(t *testing.T, iters int) {
	r := rand.New(rand.NewPCG(impSeed(t), 5))
	for it := range iters {
		p := newRelPair(t, relOpts{cipher: relAEAD, hello: true, label: fmt.Sprint(it),
			up: impairConfig{Loss: 0.05}, down: impairConfig{Loss: 0.05}})
		var wg sync.WaitGroup
		var returned atomic.Int64 // unix ns of the latest return
		run := func(f func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f()
				returned.Store(max(returned.Load(), time.Now().UnixNano()))
			}()
		}
		for _, s := range []*UDPSession{p.cli, p.srv} {
			run(func() {
				buf := make([]byte, 2048)
				for {
					if _, err := s.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
				}
			})
			run(func() {
				buf := make([]byte, 1500)
				for {
					if _, err := s.Write(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
				}
			})
			seed := r.Uint64()
			run(func() {
				rr := rand.New(rand.NewPCG(seed, 1))
				for range 20 {
					d := time.Duration(rr.IntN(2000)) * time.Microsecond
					switch rr.IntN(4) {
					case 0:
						s.SetDeadline(time.Now().Add(d))
					case 1:
						s.SetReadDeadline(time.Now().Add(d))
					case 2:
						s.SetWriteDeadline(time.Now().Add(d))
					default:
						s.SetDeadline(time.Time{})
					}
					time.Sleep(d / 2) // spreading the calls in time, not synchronising
				}
				s.SetDeadline(time.Time{})
			})
		}
		run(func() {
			for {
				if _, err := p.l.AcceptKCP(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					return
				}
			}
		})
		run(func() {
			p.l.SetDeadline(time.Now().Add(time.Millisecond))
			p.l.SetDeadline(time.Time{})
		})
		time.Sleep(time.Duration(r.IntN(5000)) * time.Microsecond) // let the calls block at a random point
		closers := []func(){func() { p.cli.Close() }, func() { p.srv.Close() }, func() { p.l.Close() }}
		r.Shuffle(len(closers), func(i, j int) { closers[i], closers[j] = closers[j], closers[i] })
		for _, c := range closers {
			c()
		}
		closed := time.Now()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("iteration %d: calls still blocked 1 s after the last Close\n%s", it, buf[:n])
		}
		if late := time.Duration(returned.Load() - closed.UnixNano()); late > time.Second {
			t.Fatalf("iteration %d: a call returned %v after the last Close", it, late)
		}
	}
}
