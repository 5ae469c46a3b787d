package kcp

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// SystemTimedSched is the scheduler every session uses to run its periodic
// ARQ updates. It is one of the package's three globals (with DefaultSnmp
// and the buffer pool) because sharing a fixed set of goroutines across all
// sessions is what keeps an idle session cheap. Its goroutines start at the
// first Put, never at import; one worker per CPU, at least two.
var SystemTimedSched = NewTimedSched(max(runtime.NumCPU(), 2))

// TimedSched runs functions at or after a deadline on a fixed set of worker
// goroutines. Each worker keeps a min-heap of its tasks ordered by due time,
// then deadline (ties in the order they were put), and one reusable timer, so
// a pending task costs one heap entry: no goroutine and no timer of its own.
// The due time is the deadline, or for a task put 16 ms or more ahead the
// deadline rounded up by at most 1/16 of that lead (1 or 4 ms), so that
// tasks falling due together share one wake-up. Tasks are spread over the
// workers in turn; a worker runs its due tasks one after another in that
// order, so a slow task delays the others on its worker. Tasks on different
// workers run concurrently.
//
// A TimedSched is safe for concurrent use. Its goroutines start at the first
// Put. After Close, Put does nothing and tasks not yet run are dropped.
type TimedSched struct {
	workers []*schedWorker
	next    atomic.Uint32 // round-robin cursor over workers
	closed  atomic.Bool   // set by Close; checked by Put without locking

	running atomic.Bool // workers launched; lets Put skip mu once true

	mu      sync.Mutex // guards started and the start/stop of the workers
	started bool
	die     chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// schedWorker is one goroutine's share of a TimedSched.
type schedWorker struct {
	wake chan struct{} // buffered 1: a task became the earliest one

	mu     sync.Mutex
	tasks  []timedTask // min-heap by (due, deadline, seq)
	seq    uint64      // order of arrival, to keep equal deadlines FIFO
	closed bool        // the worker has exited; Put drops tasks
}

// Times inside the scheduler are monotonic nanoseconds since schedEpoch:
// comparing two int64 keys is far cheaper than comparing time.Time values,
// and a heap of thousands of session updates compares a lot.
var schedEpoch = time.Now()

// schedClock turns t into the scheduler's clock (saturating for times far
// in the past or future; the zero Time is far in the past).
func schedClock(t time.Time) time.Duration { return t.Sub(schedEpoch) }

type timedTask struct {
	due      time.Duration // when the worker runs it: deadline plus slack (schedClock)
	deadline time.Duration // schedClock
	seq      uint64
	f        func()
}

// before orders tasks by due time, then deadline, then arrival.
func (a *timedTask) before(b *timedTask) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return a.seq < b.seq
}

// Timer slack. A task put far ahead may run a little after its deadline: its
// due time is the deadline rounded up to a grid, so tasks due in one grid
// step share one wake-up of the worker instead of one each. Sessions put
// their updates 10 ms to 1 s ahead; a thousand of them spread over a second
// otherwise wake a worker a thousand times a second or more. The slack is
// at most 1/16 of how far ahead the task was put, so ARQ timers keep their
// precision: nothing below 16 ms ahead gets any.
const (
	slackFine   = time.Millisecond     // for tasks put 16..64 ms ahead
	slackCoarse = 4 * time.Millisecond // for tasks put 64 ms or more ahead
)

// dueTime is deadline (schedClock) plus the slack allowed for a task put
// ahead by ahead: deadline rounded up to the slack grid of schedClock, which
// every worker shares.
func dueTime(deadline, ahead time.Duration) time.Duration {
	var g time.Duration
	switch {
	case ahead >= 64*time.Millisecond:
		g = slackCoarse
	case ahead >= 16*time.Millisecond:
		g = slackFine
	default:
		return deadline
	}
	if deadline > math.MaxInt64-g { // saturated: centuries ahead
		return deadline
	}
	if r := deadline % g; r > 0 {
		return deadline + g - r
	} else if r < 0 {
		return deadline - r
	}
	return deadline
}

// NewTimedSched returns a scheduler with parallel worker goroutines (values
// below 1 mean 1). The goroutines start at the first Put; call Close to stop
// them.
func NewTimedSched(parallel int) *TimedSched {
	parallel = max(parallel, 1)
	ts := &TimedSched{
		workers: make([]*schedWorker, parallel),
		die:     make(chan struct{}),
	}
	for i := range ts.workers {
		ts.workers[i] = &schedWorker{wake: make(chan struct{}, 1)}
	}
	return ts
}

// Put schedules f to run once at or after deadline (up to 1/16 of the
// wait later, at most 4 ms, to share wake-ups); a deadline already passed
// runs f as soon as its worker is free. f runs on a worker goroutine
// and may call Put itself. Put never blocks on f. A nil f is ignored, and
// after Close Put does nothing.
func (ts *TimedSched) Put(f func(), deadline time.Time) {
	if f == nil || ts.closed.Load() || !ts.start() {
		return
	}
	w := ts.workers[int(ts.next.Add(1)-1)%len(ts.workers)]
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.seq++
	d := schedClock(deadline)
	w.push(timedTask{due: dueTime(d, d-schedClock(time.Now())), deadline: d, seq: w.seq, f: f})
	earliest := w.tasks[0].seq == w.seq
	w.mu.Unlock()
	if earliest {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops the scheduler's goroutines and drops the tasks not yet run.
// It does not wait for a task that is running. Calling it again does
// nothing.
func (ts *TimedSched) Close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed.Swap(true) {
		return
	}
	close(ts.die)
}

// start launches the workers once; it reports false when ts is closed.
func (ts *TimedSched) start() bool {
	if ts.running.Load() {
		return true
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed.Load() {
		return false
	}
	if !ts.started {
		ts.started = true
		ts.wg.Add(len(ts.workers))
		for _, w := range ts.workers {
			go w.run(ts.die, &ts.wg)
		}
		ts.running.Store(true)
	}
	return true
}

// wait blocks until every worker goroutine has exited (after Close).
func (ts *TimedSched) wait() { ts.wg.Wait() }

func (w *schedWorker) run(die <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	now := schedClock(time.Now())
	for {
		// Take one due task at a time, so a task put while another runs
		// still goes in deadline order.
		w.mu.Lock()
		if len(w.tasks) > 0 && w.tasks[0].due > now {
			now = schedClock(time.Now())
		}
		if len(w.tasks) > 0 && w.tasks[0].due <= now {
			t := w.pop()
			w.mu.Unlock()
			select {
			case <-die:
				w.exit()
				return
			default:
			}
			t.f()
			continue
		}
		wait := time.Duration(-1)
		if len(w.tasks) > 0 {
			wait = w.tasks[0].due - now
		}
		w.mu.Unlock()

		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-w.wake:
		case <-timer.C:
		case <-die:
			w.exit()
			return
		}
		timer.Stop()
		now = schedClock(time.Now())
	}
}

// exit marks the worker closed and drops its tasks so their closures can be
// collected.
func (w *schedWorker) exit() {
	w.mu.Lock()
	w.closed = true
	clear(w.tasks)
	w.tasks = nil
	w.mu.Unlock()
}

// push and pop keep w.tasks a binary min-heap; written out rather than
// through container/heap, whose interface boxing allocates per task.
func (w *schedWorker) push(t timedTask) {
	w.tasks = append(w.tasks, t)
	h := w.tasks
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (w *schedWorker) pop() timedTask {
	h := w.tasks
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = timedTask{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	w.tasks = h
	return top
}
