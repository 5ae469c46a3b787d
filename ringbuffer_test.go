package kcp

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// ringContents lists r from head to tail through At, ForEach and
// ForEachReverse, failing the test when the three disagree.
func ringContents(t *testing.T, r *RingBuffer[int]) []int {
	t.Helper()
	var at, fwd, rev []int
	for i := range r.Len() {
		at = append(at, *r.At(i))
	}
	r.ForEach(func(p *int) bool { fwd = append(fwd, *p); return true })
	r.ForEachReverse(func(p *int) bool { rev = append(rev, *p); return true })
	slices.Reverse(rev)
	if !slices.Equal(at, fwd) || !slices.Equal(at, rev) {
		t.Fatalf("At %v, ForEach %v, ForEachReverse reversed %v", at, fwd, rev)
	}
	return at
}

// TestRingBufferModel drives a ring and a plain slice with the same seeded
// random operations and compares them after every step.
func TestRingBufferModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 14))
	for _, start := range []int{0, 1, 8, 9, 100} {
		r := NewRingBuffer[int](start)
		var model []int
		next := 0
		for step := range 20000 {
			switch op := rng.IntN(10); {
			case op < 5:
				r.Push(next)
				model = append(model, next)
				next++
			case op < 8:
				v, ok := r.Pop()
				if ok != (len(model) > 0) || (ok && v != model[0]) {
					t.Fatalf("start %d step %d: Pop = %d,%v, model %v", start, step, v, ok, model[:min(len(model), 3)])
				}
				if ok {
					model = model[1:]
				}
			case op < 9:
				n := rng.IntN(6) - 1
				got := r.Discard(n)
				want := max(0, min(n, len(model)))
				if got != want {
					t.Fatalf("start %d step %d: Discard(%d) = %d, want %d", start, step, n, got, want)
				}
				model = model[want:]
			default:
				p, ok := r.Peek()
				if ok != (len(model) > 0) || (ok && *p != model[0]) {
					t.Fatalf("start %d step %d: Peek disagrees with model", start, step)
				}
			}
			if r.Len() != len(model) || r.IsEmpty() != (len(model) == 0) || r.Len() > r.MaxLen() {
				t.Fatalf("start %d step %d: Len %d MaxLen %d IsEmpty %v, model %d", start, step, r.Len(), r.MaxLen(), r.IsEmpty(), len(model))
			}
			if r.IsFull() != (r.Len() == r.MaxLen()) {
				t.Fatalf("start %d step %d: IsFull %v with Len %d MaxLen %d", start, step, r.IsFull(), r.Len(), r.MaxLen())
			}
			if step%97 == 0 && !slices.Equal(ringContents(t, r), model) {
				t.Fatalf("start %d step %d: contents differ from model", start, step)
			}
		}
	}
}

// TestRingBufferGrowth checks kcp-go's capacity rule: a backing slice of
// max(size, 8) slots holding one element less, doubled while below 1024,
// then grown by 10 % rounded up.
func TestRingBufferGrowth(t *testing.T) {
	for _, tc := range []struct{ size, maxLen int }{{-3, 7}, {0, 7}, {8, 7}, {9, 8}, {1500, 1499}} {
		if got := NewRingBuffer[byte](tc.size).MaxLen(); got != tc.maxLen {
			t.Errorf("NewRingBuffer(%d).MaxLen() = %d, want %d", tc.size, got, tc.maxLen)
		}
	}
	r := NewRingBuffer[int](0)
	var seen []int
	for i := range 1300 {
		if r.IsFull() {
			r.Push(i)
			seen = append(seen, r.MaxLen())
		} else {
			r.Push(i)
		}
	}
	want := []int{15, 31, 63, 127, 255, 511, 1023, 1126, 1239, 1363} // 1024 slots +103, +113, +124
	if !slices.Equal(seen[:len(want)], want) {
		t.Fatalf("MaxLen after each growth = %v, want %v", seen, want)
	}
	for i := range 1300 {
		if v, _ := r.Pop(); v != i {
			t.Fatalf("Pop #%d = %d after growth", i, v)
		}
	}
}

// TestRingBufferZeroValue checks that a RingBuffer declared without
// NewRingBuffer works (kcp-go's divides by zero on the first Push).
func TestRingBufferZeroValue(t *testing.T) {
	var r RingBuffer[string]
	if r.Len() != 0 || !r.IsEmpty() || r.MaxLen() != 0 || r.Discard(3) != 0 {
		t.Fatal("zero value is not an empty ring")
	}
	if _, ok := r.Pop(); ok {
		t.Fatal("Pop on the zero value reported an element")
	}
	r.Clear()
	r.Push("a")
	r.Push("b")
	if v, ok := r.Pop(); !ok || v != "a" || r.Len() != 1 || r.MaxLen() != RINGBUFFER_MIN-1 {
		t.Fatalf("after two Pushes: Pop %q,%v Len %d MaxLen %d", v, ok, r.Len(), r.MaxLen())
	}
}

// TestRingBufferReleasesReferences checks that Pop, Discard and Clear zero
// the slots they vacate, across the wrap, so the ring pins no memory.
func TestRingBufferReleasesReferences(t *testing.T) {
	r := NewRingBuffer[*int](8)
	for i := range 6 { // head and tail move to 6, so later pushes wrap
		r.Push(&i)
		r.Pop()
	}
	for i := range 7 {
		r.Push(&i)
	}
	r.Pop()
	if r.Discard(3) != 3 || r.Len() != 3 {
		t.Fatalf("Discard(3) left Len %d", r.Len())
	}
	held := 0
	for _, p := range r.slots {
		if p != nil {
			held++
		}
	}
	if held != 3 {
		t.Fatalf("%d slots hold pointers after Pop and Discard, want 3", held)
	}
	r.Clear()
	for i, p := range r.slots {
		if p != nil {
			t.Fatalf("slot %d still holds a pointer after Clear", i)
		}
	}
}

// TestRingBufferEarlyStopAndPointers checks that ForEach and
// ForEachReverse stop when fn returns false and that the pointers they, Peek
// and At hand out reach the stored elements.
func TestRingBufferEarlyStopAndPointers(t *testing.T) {
	r := NewRingBuffer[int](8)
	for i := range 5 {
		r.Push(i)
	}
	var fwd, rev []int
	r.ForEach(func(p *int) bool { fwd = append(fwd, *p); return *p < 2 })
	r.ForEachReverse(func(p *int) bool { rev = append(rev, *p); return *p > 3 })
	if !slices.Equal(fwd, []int{0, 1, 2}) || !slices.Equal(rev, []int{4, 3}) {
		t.Fatalf("early stop: forward %v, reverse %v", fwd, rev)
	}
	r.ForEach(func(p *int) bool { *p *= 10; return true })
	*r.At(4) = 7
	p, _ := r.Peek()
	*p = -1
	if got := ringContents(t, r); !slices.Equal(got, []int{-1, 10, 20, 30, 7}) {
		t.Fatalf("after writes through pointers: %v", got)
	}
}
