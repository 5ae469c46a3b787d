package kcp

import (
	"math"
	"testing"
)

func TestAmpLimit(t *testing.T) {
	var a ampLimit
	if a.allow(1) || a.left() != 0 {
		t.Fatal("a zero budget allowed a byte")
	}
	if !a.allow(0) {
		t.Fatal("a zero budget refused nothing")
	}
	a.received(100)
	a.received(-5) // ignored
	if !a.allow(300) || a.allow(301) || a.left() != 300 {
		t.Fatalf("100 B in: allow(300) %v allow(301) %v left %d", a.allow(300), a.allow(301), a.left())
	}
	a.charge(250)
	if !a.allow(50) || a.allow(51) {
		t.Fatal("after sending 250 of 300 the budget is not 50")
	}
	a.charge(100) // sent regardless
	if a.allow(1) || a.left() != 0 {
		t.Fatal("an overdrawn budget allowed more")
	}
	a.received(50) // 150 in: 450 allowed, 350 out
	if !a.allow(100) || a.allow(101) {
		t.Fatalf("left %d after more input, want 100", a.left())
	}
	a.validate()
	if !a.validated() || !a.allow(math.MaxInt) || a.left() != ^uint64(0) {
		t.Fatal("a validated peer is still limited")
	}
}
