package interop

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// LinkConfig shapes one direction of a Link.
type LinkConfig struct {
	Loss   float64       // probability in [0,1) that a datagram is dropped
	Dup    float64       // probability in [0,1) that a delivered datagram arrives twice
	Delay  time.Duration // one-way base delay
	Jitter time.Duration // extra delay drawn uniformly from [0, Jitter): reorders datagrams
	Seed   uint64        // seeds the loss, duplication and jitter draws
}

// Link is an in-memory, one-way, lossy datagram path. Its Output method has
// the shape of both libraries' KCP output callback, so a kcp-go core and a
// kcpx core can write into it; Deliver hands the datagrams that are due to a
// receiver. Datagrams are copied on entry. Safe for concurrent use.
type Link struct {
	mu    sync.Mutex
	cfg   LinkConfig
	rng   *rand.Rand
	now   func() time.Time
	q     pending
	seq   uint64
	stats LinkStats
}

// LinkStats counts what a Link did.
type LinkStats struct {
	Sent, Dropped, Duplicated, Delivered uint64
}

// NewLink returns a Link with the given shape. now is the clock that
// timestamps arrivals (time.Now when nil).
func NewLink(cfg LinkConfig, now func() time.Time) *Link {
	if now == nil {
		now = time.Now
	}
	return &Link{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: now}
}

// Output queues buf[:size]; it matches the KCP output callback of both
// libraries (func(buf []byte, size int)).
func (l *Link) Output(buf []byte, size int) { l.Send(buf[:size]) }

// Send queues a copy of p, dropping or duplicating it as configured.
func (l *Link) Send(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Sent++
	if l.cfg.Loss > 0 && l.rng.Float64() < l.cfg.Loss {
		l.stats.Dropped++
		return
	}
	copies := 1
	if l.cfg.Dup > 0 && l.rng.Float64() < l.cfg.Dup {
		copies = 2
		l.stats.Duplicated++
	}
	now := l.now()
	for range copies {
		at := now.Add(l.cfg.Delay)
		if l.cfg.Jitter > 0 {
			at = at.Add(time.Duration(l.rng.Int64N(int64(l.cfg.Jitter))))
		}
		l.seq++
		heap.Push(&l.q, packet{at: at, seq: l.seq, data: append([]byte(nil), p...)})
	}
}

// Deliver calls f, in arrival order, for every datagram due by now, and
// returns how many it delivered. f may call Send on this Link or another.
func (l *Link) Deliver(now time.Time, f func(p []byte)) int {
	n := 0
	for {
		l.mu.Lock()
		if len(l.q) == 0 || l.q[0].at.After(now) {
			l.mu.Unlock()
			return n
		}
		p := heap.Pop(&l.q).(packet)
		l.stats.Delivered++
		l.mu.Unlock()
		f(p.data)
		n++
	}
}

// Pending is the number of datagrams in flight.
func (l *Link) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}

// Stats returns the counters so far.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

type packet struct {
	at   time.Time
	seq  uint64 // breaks ties so equal arrival times keep send order
	data []byte
}

type pending []packet

func (q pending) Len() int { return len(q) }
func (q pending) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q pending) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pending) Push(x any)   { *q = append(*q, x.(packet)) }
func (q *pending) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}
