package kcp

import (
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
// goroutines. Each worker keeps a min-heap of its tasks ordered by deadline
// (ties in the order they were put) and one reusable timer, so a pending task
// costs one heap entry: no goroutine and no timer of its own. Tasks are
// spread over the workers in turn; a worker runs its due tasks one after
// another in deadline order, so a slow task delays the others on its worker.
// Tasks on different workers run concurrently.
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
	tasks  []timedTask // min-heap by (deadline, seq)
	seq    uint64      // order of arrival, to keep equal deadlines FIFO
	closed bool        // the worker has exited; Put drops tasks
}

type timedTask struct {
	deadline time.Time
	seq      uint64
	f        func()
}

func (a *timedTask) before(b *timedTask) bool {
	if a.deadline.Equal(b.deadline) {
		return a.seq < b.seq
	}
	return a.deadline.Before(b.deadline)
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

// Put schedules f to run once at or after deadline; a deadline already
// passed runs f as soon as its worker is free. f runs on a worker goroutine
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
	w.push(timedTask{deadline: deadline, seq: w.seq, f: f})
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
	now := time.Now()
	for {
		// Take one due task at a time, so a task put while another runs
		// still goes in deadline order.
		w.mu.Lock()
		if len(w.tasks) > 0 && w.tasks[0].deadline.After(now) {
			now = time.Now()
		}
		if len(w.tasks) > 0 && !w.tasks[0].deadline.After(now) {
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
			wait = w.tasks[0].deadline.Sub(now)
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
		now = time.Now()
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
