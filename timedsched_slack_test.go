package kcp

import (
	"math"
	"testing"
	"time"
)

// TestDueTime: no slack below 16 ms ahead; then the deadline rounded up to
// a 1 ms grid (16..64 ms ahead) or a 4 ms grid (64 ms and more) of the
// scheduler's clock, never earlier than the deadline.
func TestDueTime(t *testing.T) {
	base := schedClock(time.Now())
	tests := []struct {
		name  string
		ahead time.Duration
		grid  time.Duration // 0: exact
	}{
		{"past", -time.Second, 0},
		{"now", 0, 0},
		{"just under 16 ms", 16*time.Millisecond - 1, 0},
		{"16 ms", 16 * time.Millisecond, time.Millisecond},
		{"interval of 40 ms", 40 * time.Millisecond, time.Millisecond},
		{"64 ms", 64 * time.Millisecond, 4 * time.Millisecond},
		{"park of 1 s", time.Second, 4 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for off := range time.Duration(40) {
				deadline := base + tc.ahead + off*137*time.Microsecond
				due := dueTime(deadline, tc.ahead)
				if tc.grid == 0 {
					if due != deadline {
						t.Fatalf("due %v, want the deadline %v", due, deadline)
					}
					continue
				}
				if due < deadline || due-deadline >= tc.grid {
					t.Fatalf("due is %v after the deadline, want [0, %v)", due-deadline, tc.grid)
				}
				if due%tc.grid != 0 {
					t.Fatalf("due %v is off the %v grid", due, tc.grid)
				}
			}
		})
	}
	t.Run("saturated far future", func(t *testing.T) {
		if d := dueTime(math.MaxInt64, time.Hour); d != math.MaxInt64 {
			t.Fatalf("due %v, want the deadline unchanged", d)
		}
	})
}

// TestTimedSchedSharesWakeups: tasks put 100 ms ahead with deadlines a few
// hundred microseconds apart inside one 4 ms grid step run back to back, in
// deadline order, none before its deadline and none before the step's end.
func TestTimedSchedSharesWakeups(t *testing.T) {
	ts := NewTimedSched(1)
	defer closeAndWait(t, ts)
	// The first 4 ms grid point of the scheduler's clock at least 100 ms
	// ahead, and tasks due in the 4 ms before it.
	const g = 4 * time.Millisecond
	c := schedClock(time.Now()) + 100*time.Millisecond + g
	cell := schedEpoch.Add(c - c%g)
	const n = 8
	ran := make([]time.Time, n)
	done := make(chan struct{})
	for i := range n {
		deadline := cell.Add(-time.Duration(n-i) * 400 * time.Microsecond)
		ts.Put(func() {
			if time.Now().Before(deadline) {
				t.Errorf("task %d ran before its deadline", i)
			}
			ran[i] = time.Now()
			if i == n-1 {
				close(done)
			}
		}, deadline)
	}
	waitOrFail(t, done, "tasks")
	for i := 1; i < n; i++ {
		if ran[i].Before(ran[i-1]) {
			t.Fatalf("task %d ran before task %d", i, i-1)
		}
	}
	if ran[0].Before(cell) {
		t.Fatalf("the first task ran %v before the shared due time", cell.Sub(ran[0]))
	}
}
