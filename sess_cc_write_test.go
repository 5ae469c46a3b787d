package kcp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// queueSampler records, from its own goroutine, the most payload bytes the
// session's core ever held in its send queue (beyond the window) while it
// ran.
type queueSampler struct {
	stop chan struct{}
	done chan struct{}
	max  int
}

func sampleQueue(s *UDPSession) *queueSampler {
	q := &queueSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			s.mu.Lock()
			q.max = max(q.max, s.kcp.cc.queued)
			s.mu.Unlock()
			select {
			case <-q.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return q
}

// result stops the sampler and returns the most bytes it saw queued.
func (q *queueSampler) result() int {
	close(q.stop)
	<-q.done
	return q.max
}

// slowRead reads len(want) bytes from s into a buffer and compares: the
// first slow bytes at 16 KiB per millisecond tick, the rest as fast as they
// come. It reports the first difference or error on errc.
func slowRead(s *UDPSession, want []byte, slow int, errc chan<- error) {
	got := make([]byte, len(want))
	s.SetReadDeadline(time.Now().Add(60 * time.Second))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	off := 0
	for off < slow {
		<-tick.C
		n, err := io.ReadFull(s, got[off:min(off+16<<10, slow)])
		off += n
		if err != nil {
			errc <- err
			return
		}
	}
	if _, err := io.ReadFull(s, got[off:]); err != nil {
		errc <- err
		return
	}
	if !bytes.Equal(got, want) {
		errc <- errors.New("bytes differ")
		return
	}
	errc <- nil
}

// TestWriteLargeInSteps: one large Write to a peer that reads slowly is
// queued in steps: the bytes waiting beyond the window never pass the write
// bound (stream mode splits anywhere), and everything arrives byte-exact
// once the reader catches up, in every controller mode. Before Write
// queued in steps, the whole buffer sat in the send queue at once.
func TestWriteLargeInSteps(t *testing.T) {
	parallelTest(t)
	leakCheck(t)
	for _, cc := range []string{CongestionNone, CongestionKCP, CongestionBBR, CongestionCUBIC} {
		t.Run(cc, func(t *testing.T) {
			size := 8 << 20
			if cc == CongestionNone {
				size = 64 << 20 // the case
			}
			if raceEnabled {
				size = 2 << 20
			}
			n := newMemNet(71)
			a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
			defer a.Close()
			defer b.Close()
			for _, s := range []*UDPSession{a, b} {
				s.SetNoDelay(1, 10, 2, 1)
				s.SetWindowSize(1024, 1024)
				s.SetStreamMode(true)
			}
			if err := a.SetCongestionControl(cc); err != nil {
				t.Fatal(err)
			}
			const bound = 256 << 10
			a.SetWriteQueueLimit(bound)
			data := randBytes(72, size)
			errc := make(chan error, 1)
			go slowRead(b, data, 1<<20, errc)
			q := sampleQueue(a)
			a.SetWriteDeadline(time.Now().Add(60 * time.Second))
			wn, werr := a.Write(data)
			most := q.result()
			if werr != nil || wn != len(data) {
				t.Fatalf("Write = %d, %v; want %d, nil", wn, werr, len(data))
			}
			if err := <-errc; err != nil {
				t.Fatalf("reader: %v", err)
			}
			if most > bound {
				t.Fatalf("%d bytes queued beyond the window at once, want at most %d", most, bound)
			}
			t.Logf("%s: %d MiB written, at most %d KiB queued", cc, size>>20, most>>10)
		})
	}
}

// TestWriteMessagesInSteps: in message mode a large WriteBuffers is queued
// a message at a time: no message is split or merged (each Read returns one
// buffer of the call), and the queue passes the bound by at most one
// message.
func TestWriteMessagesInSteps(t *testing.T) {
	leakCheck(t)
	n := newMemNet(73)
	a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
	defer a.Close()
	defer b.Close()
	for _, s := range []*UDPSession{a, b} {
		s.SetNoDelay(1, 10, 2, 1)
		s.SetWindowSize(256, 256)
	}
	roundTripPair(t, a, b, []byte("window")) // both peers' windows known
	roundTripPair(t, b, a, []byte("window"))
	const bound = 64 << 10
	a.SetWriteQueueLimit(bound)
	a.mu.Lock()
	msgMax := a.kcp.maxMessageSize()
	a.mu.Unlock()
	count := 120
	if raceEnabled {
		count = 60
	}
	v := make([][]byte, count)
	total := 0
	for i := range v {
		v[i] = randBytes(uint64(100+i), 1+(i*7919)%msgMax)
		total += len(v[i])
	}
	var wg sync.WaitGroup
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, msgMax)
		b.SetReadDeadline(time.Now().Add(60 * time.Second))
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range v {
			if i < count/4 {
				<-tick.C // slow at first
			}
			k, err := b.Read(buf)
			if err != nil {
				readErr = err
				return
			}
			if !bytes.Equal(buf[:k], v[i]) {
				readErr = errors.New("message boundaries or bytes differ")
				return
			}
		}
	}()
	q := sampleQueue(a)
	a.SetWriteDeadline(time.Now().Add(60 * time.Second))
	wn, werr := a.WriteBuffers(v)
	most := q.result()
	wg.Wait()
	if werr != nil || wn != total {
		t.Fatalf("WriteBuffers = %d, %v; want %d, nil", wn, werr, total)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	if most > bound+msgMax {
		t.Fatalf("%d bytes queued at once, want at most %d + one message of %d", most, bound, msgMax)
	}
	t.Logf("%d messages, %d KiB, at most %d KiB queued", count, total>>10, most>>10)
}

// TestWriteDeadlineMidway: a large Write to a peer that does not read ends
// at the write deadline with the bytes it queued and a timeout, and exactly
// those bytes arrive: a second Write's bytes follow them directly.
func TestWriteDeadlineMidway(t *testing.T) {
	leakCheck(t)
	for _, cc := range []string{CongestionKCP, CongestionBBR} {
		t.Run(cc, func(t *testing.T) {
			n := newMemNet(74)
			a, b, _, _ := memPair(t, n, func() BlockCrypt { return nil }, 0, 0)
			defer a.Close()
			defer b.Close()
			for _, s := range []*UDPSession{a, b} {
				s.SetNoDelay(1, 10, 2, 1)
				s.SetWindowSize(128, 128)
				s.SetStreamMode(true)
			}
			if err := a.SetCongestionControl(cc); err != nil {
				t.Fatal(err)
			}
			a.SetWriteQueueLimit(128 << 10)
			data := randBytes(75, 16<<20)
			a.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			wn, err := a.Write(data)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write = %d, %v; want a timeout", wn, err)
			}
			if wn <= 0 || wn >= len(data) {
				t.Fatalf("Write queued %d of %d bytes before the deadline", wn, len(data))
			}
			a.SetWriteDeadline(time.Time{})
			tail := []byte("tail after the deadline")
			go a.Write(tail)
			want := append(append([]byte(nil), data[:wn]...), tail...)
			got := make([]byte, len(want))
			b.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.ReadFull(b, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the %d bytes Write reported were not delivered exactly", wn)
			}
			t.Logf("%s: %d bytes queued before the deadline", cc, wn)
		})
	}
}
