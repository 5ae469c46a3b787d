package kcp

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

// kcp-go's exported API, checked at compile time.
var (
	_ func(int) *TimedSched                = NewTimedSched
	_ func(*TimedSched, func(), time.Time) = (*TimedSched).Put
	_ func(*TimedSched)                    = (*TimedSched).Close
	_ *TimedSched                          = SystemTimedSched
)

// waitOrFail waits for ch, failing the test after a generous bound so a bug
// shows up as a failure rather than a hung test run.
func waitOrFail(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func closeAndWait(t *testing.T, ts *TimedSched) {
	t.Helper()
	ts.Close()
	ts.wait() // bounded: Close makes every worker return; a bug hangs the test binary's timeout
}

func TestTimedSchedRunsInDeadlineOrder(t *testing.T) {
	tests := []struct {
		name string
		base time.Duration // deadlines are now+base+offset
	}{
		// Below the 16 ms from which timer slack applies: a task put 16 ms
		// or more ahead is due on a 1 ms grid, one put later (the loop took
		// over 4 ms under -race with a CPU hog) at its deadline, so a mix of
		// the two runs out of deadline order, as documented.
		{"future", 10 * time.Millisecond},
		{"past", -time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := NewTimedSched(1)
			defer closeAndWait(t, ts)

			// Hold the only worker so every task below is queued before any runs.
			gate := make(chan struct{})
			ts.Put(func() { <-gate }, time.Time{})

			const n = 200
			offsets := rand.New(rand.NewPCG(1, 2)).Perm(n)
			var mu sync.Mutex
			var got []int
			done := make(chan struct{})
			now := time.Now()
			for _, off := range offsets {
				deadline := now.Add(tc.base + time.Duration(off)*time.Microsecond)
				ts.Put(func() {
					if time.Now().Before(deadline) {
						t.Errorf("task %d ran before its deadline", off)
					}
					mu.Lock()
					got = append(got, off)
					if len(got) == n {
						close(done)
					}
					mu.Unlock()
				}, deadline)
			}
			close(gate)
			waitOrFail(t, done, "tasks")
			for i, v := range got {
				if v != i {
					t.Fatalf("run order %v..., want ascending deadlines", got[:min(len(got), 20)])
				}
			}
		})
	}
}

func TestTimedSchedEqualDeadlinesFIFO(t *testing.T) {
	ts := NewTimedSched(1)
	defer closeAndWait(t, ts)
	gate := make(chan struct{})
	ts.Put(func() { <-gate }, time.Time{})
	d := time.Now().Add(-time.Second)
	var got []int
	done := make(chan struct{})
	for i := range 50 {
		ts.Put(func() {
			got = append(got, i) // one worker: no concurrent appends
			if i == 49 {
				close(done)
			}
		}, d)
	}
	close(gate)
	waitOrFail(t, done, "tasks")
	for i, v := range got {
		if v != i {
			t.Fatalf("equal deadlines ran as %v, want FIFO", got)
		}
	}
}

func TestTimedSchedEarlierTaskWakesWorker(t *testing.T) {
	ts := NewTimedSched(1)
	defer closeAndWait(t, ts)
	ts.Put(func() { t.Error("the far task ran") }, time.Now().Add(time.Hour))
	done := make(chan struct{})
	ts.Put(func() { close(done) }, time.Now().Add(5*time.Millisecond))
	waitOrFail(t, done, "the near task behind a far one")
}

func TestTimedSchedManyTasksConcurrentPut(t *testing.T) {
	ts := NewTimedSched(4)
	defer closeAndWait(t, ts)
	const putters, perPutter = 8, 2000
	var ran atomic.Int64
	var wg sync.WaitGroup
	wg.Add(putters * perPutter)
	for p := range putters {
		go func() {
			r := rand.New(rand.NewPCG(uint64(p), 7))
			for range perPutter {
				d := time.Now().Add(time.Duration(r.IntN(4000)-1000) * time.Microsecond)
				ts.Put(func() { ran.Add(1); wg.Done() }, d)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	waitOrFail(t, done, "all tasks")
	if ran.Load() != putters*perPutter {
		t.Fatalf("ran %d tasks, want %d", ran.Load(), putters*perPutter)
	}
}

func TestTimedSchedTaskReschedulesItself(t *testing.T) {
	ts := NewTimedSched(2)
	defer closeAndWait(t, ts)
	done := make(chan struct{})
	var count int
	var tick func()
	tick = func() {
		count++ // one task outstanding at a time: ordered by Put
		if count == 100 {
			close(done)
			return
		}
		ts.Put(tick, time.Now().Add(100*time.Microsecond))
	}
	ts.Put(tick, time.Now())
	waitOrFail(t, done, "self-rescheduling task")
}

// workersOf counts the live goroutines started by a TimedSched whose first
// Put ran on goroutine creator. Every worker's trace ends with a "created
// by" line naming start and its caller's goroutine from the moment it is
// created, so the count covers workers that have not run yet and ignores
// every other scheduler in the process.
func workersOf(creator string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]),
				"created by github.com/kcpx/kcp.(*TimedSched).start in goroutine "+creator+"\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// putFromNewGoroutine calls ts.Put on a fresh goroutine and returns that
// goroutine's id, which names the creator of any workers the Put started.
func putFromNewGoroutine(ts *TimedSched, f func(), deadline time.Time) string {
	id := make(chan string)
	go func() {
		buf := make([]byte, 64)
		buf = buf[:runtime.Stack(buf, false)]
		ts.Put(f, deadline)
		id <- strings.Fields(string(buf))[1] // "goroutine <id> [running]:"
	}()
	return <-id
}

// waitNoWorkers waits until the workers of creator are gone. wait() returns
// once each worker has finished its last statement; the runtime reaps the
// goroutine a moment later, so this yields until it has.
func waitNoWorkers(t *testing.T, creator string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for workersOf(creator) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still alive after Close", workersOf(creator))
		}
		runtime.Gosched()
	}
}

func TestTimedSchedLazyStartAndClose(t *testing.T) {
	ts := NewTimedSched(8)
	if ts.started {
		t.Fatal("NewTimedSched started its workers before any Put")
	}
	ran := make(chan struct{})
	creator := putFromNewGoroutine(ts, func() { close(ran) }, time.Time{})
	waitOrFail(t, ran, "first task")
	if n := workersOf(creator); n != 8 {
		t.Fatalf("%d workers after the first Put, want 8", n)
	}
	var late atomic.Bool
	ts.Put(func() { late.Store(true) }, time.Now().Add(time.Hour))
	closeAndWait(t, ts)
	waitNoWorkers(t, creator)
	// Put after Close is a no-op: nothing restarts, nothing is queued.
	if again := putFromNewGoroutine(ts, func() { late.Store(true) }, time.Time{}); workersOf(again) != 0 {
		t.Fatal("Put after Close started workers")
	}
	ts.Close() // idempotent
	for i, w := range ts.workers {
		w.mu.Lock()
		if len(w.tasks) != 0 || !w.closed {
			t.Errorf("worker %d: %d tasks queued, closed=%v", i, len(w.tasks), w.closed)
		}
		w.mu.Unlock()
	}
	if late.Load() {
		t.Error("a task dropped by Close ran")
	}
}

func TestTimedSchedReleasesClosures(t *testing.T) {
	ts := NewTimedSched(1)
	// Each closure holds the only reference to a large object.
	task := func(after func()) (func(), weak.Pointer[[1 << 16]byte]) {
		big := new([1 << 16]byte)
		return func() { big[0]++; after() }, weak.Make(big)
	}
	pendingTask, wPending := task(func() {})
	doneTask, wDone := task(func() {})
	ts.Put(pendingTask, time.Now().Add(time.Hour))
	ts.Put(doneTask, time.Time{})
	pendingTask, doneTask = nil, nil
	// One worker runs tasks in turn: once this one runs, doneTask returned.
	synced := make(chan struct{})
	ts.Put(func() { close(synced) }, time.Time{})
	waitOrFail(t, synced, "tasks")

	runtime.GC()
	if wDone.Value() != nil {
		t.Error("a task that ran is still referenced by the running scheduler")
	}
	if wPending.Value() == nil {
		t.Fatal("a pending task was collected while queued")
	}
	closeAndWait(t, ts)
	runtime.GC()
	if wPending.Value() != nil {
		t.Error("a task dropped by Close is still referenced by the scheduler")
	}
	runtime.KeepAlive(ts) // the scheduler itself stays reachable
}

func TestTimedSchedCloseBeforePut(t *testing.T) {
	ts := NewTimedSched(3)
	ts.Close()
	creator := putFromNewGoroutine(ts, func() { t.Error("ran after Close") }, time.Time{})
	ts.wait()
	if ts.started || workersOf(creator) != 0 {
		t.Fatalf("started=%v workers=%d", ts.started, workersOf(creator))
	}
}

func TestTimedSchedCloseFromTask(t *testing.T) {
	ts := NewTimedSched(2)
	done := make(chan struct{})
	ts.Put(func() { ts.Close(); close(done) }, time.Time{})
	waitOrFail(t, done, "task calling Close")
	closeAndWait(t, ts)
}

func TestTimedSchedConcurrentPutAndClose(t *testing.T) {
	for range 20 {
		ts := NewTimedSched(2)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					ts.Put(func() {}, time.Now())
				}
			}()
		}
		ts.Close()
		wg.Wait()
		closeAndWait(t, ts)
		for _, w := range ts.workers {
			w.mu.Lock()
			n := len(w.tasks)
			w.mu.Unlock()
			if n != 0 {
				t.Fatalf("%d tasks left queued after Close", n)
			}
		}
	}
}

// BenchmarkTimedSchedPutRun measures Put plus the run of a due task, with
// idle tasks (sessions waiting far in the future) already in the heaps.
func BenchmarkTimedSchedPutRun(b *testing.B) {
	for _, idle := range []int{0, 10000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			ts := NewTimedSched(2)
			defer ts.Close()
			far := time.Now().Add(time.Hour)
			for range idle {
				ts.Put(func() {}, far)
			}
			var wg sync.WaitGroup
			f := func() { wg.Done() }
			past := time.Now().Add(-time.Second)
			// Warm the heaps so steady state reuses their backing arrays.
			wg.Add(512)
			for range 512 {
				ts.Put(f, past)
			}
			wg.Wait()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				wg.Add(1)
				ts.Put(f, past)
				if i++; i%256 == 0 {
					wg.Wait()
				}
			}
			wg.Wait()
		})
	}
}
