package interop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// msgGen yields a deterministic sequence of messages; the sender and the
// checker each hold one built from the same seed.
type msgGen struct {
	rng       *rand.Rand
	left, max int
	cur       []byte
}

func newMsgGen(seed uint64, total, maxMsg int) *msgGen {
	return &msgGen{rng: rand.New(rand.NewPCG(seed, seed+1)), left: total, max: maxMsg}
}

// peek returns the next message (nil when the sequence is over).
func (g *msgGen) peek() []byte {
	if g.cur == nil && g.left > 0 {
		n := min(1+g.rng.IntN(g.max), g.left)
		g.cur = make([]byte, n)
		for i := range g.cur {
			g.cur[i] = byte(g.rng.Uint32())
		}
	}
	return g.cur
}

func (g *msgGen) advance() { g.left -= len(g.cur); g.cur = nil }

// coreFlow is one direction of a transfer between two cores.
type coreFlow struct {
	from, to core
	send     *msgGen
	want     *msgGen
	got      int
	total    int
}

func (f *coreFlow) pump(t *testing.T, wnd int) {
	for f.send.peek() != nil && f.from.WaitSnd() < 2*wnd {
		if r := f.from.Send(f.send.peek()); r < 0 {
			t.Fatalf("Send(%d bytes) = %d", len(f.send.peek()), r)
		}
		f.send.advance()
	}
}

func (f *coreFlow) drain(t *testing.T, buf []byte) {
	for {
		size := f.to.PeekSize()
		if size < 0 {
			return
		}
		n := f.to.Recv(buf)
		want := f.want.peek()
		if n != size || want == nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("after %d bytes: Recv = %d (PeekSize %d), want the next message of %d bytes, byte-exact", f.got, n, size, len(want))
		}
		f.got += n
		f.want.advance()
	}
}

func (f *coreFlow) done() bool { return f.got == f.total }

type coreCell struct {
	name   string
	link   LinkConfig
	mib    int
	window int
}

// TestCoreInterop drives a bare kcpx core against a bare kcp-go core over an
// in-memory lossy link (seeded loss, duplication, jitter that reorders), in
// message mode with random message sizes up to 8 segments, one way each and
// both ways at once, and checks every message arrives whole, in order and
// byte-exact. kcp-go's core reads its own real clock, so both cores run on
// real time with a 1 ms tick.
func TestCoreInterop(t *testing.T) {
	cells := []coreCell{
		{"clean", LinkConfig{Delay: 2 * time.Millisecond}, 8, 256},
		{"loss5_dup1_jitter5ms", LinkConfig{Loss: 0.05, Dup: 0.01, Delay: 2 * time.Millisecond, Jitter: 5 * time.Millisecond}, 4, 256},
		{"loss20_dup5_jitter10ms", LinkConfig{Loss: 0.20, Dup: 0.05, Delay: 2 * time.Millisecond, Jitter: 10 * time.Millisecond}, 4, 256},
	}
	dirs := []struct {
		name   string
		ab, ba bool // kcpx→kcp-go, kcp-go→kcpx
	}{
		{"kcpx_to_kcpgo", true, false},
		{"kcpgo_to_kcpx", false, true},
		{"both_ways", true, true},
	}
	for ci, cell := range cells {
		for di, dir := range dirs {
			t.Run(cell.name+"/"+dir.name, func(t *testing.T) {
				total := cell.mib << 20
				if raceEnabled {
					total = 256 << 10
				}
				seed := uint64(ci*10 + di + 1)
				runCorePair(t, kcpxCoreImpl, kcpgoCoreImpl, cell, seed, total, dir.ab, dir.ba)
			})
		}
	}
}

func runCorePair(t *testing.T, a, b coreImpl, cell coreCell, seed uint64, total int, ab, ba bool) {
	const conv = 0x11223344
	const mss = 1400 - 24
	cfgAB, cfgBA := cell.link, cell.link
	cfgAB.Seed, cfgBA.Seed = seed*2, seed*2+1
	linkAB, linkBA := NewLink(cfgAB, nil), NewLink(cfgBA, nil)
	ca := a.new(conv, linkAB.Output)
	cb := b.new(conv, linkBA.Output)
	for _, c := range []core{ca, cb} {
		c.NoDelay(1, 10, 2, 1)
		c.WndSize(cell.window, cell.window)
	}
	var flows []*coreFlow
	if ab {
		flows = append(flows, &coreFlow{from: ca, to: cb, send: newMsgGen(seed, total, 8*mss), want: newMsgGen(seed, total, 8*mss), total: total})
	}
	if ba {
		flows = append(flows, &coreFlow{from: cb, to: ca, send: newMsgGen(seed+100, total, 8*mss), want: newMsgGen(seed+100, total, 8*mss), total: total})
	}
	buf := make([]byte, 8*mss)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		finished := true
		for _, f := range flows {
			finished = finished && f.done()
		}
		if finished {
			break
		}
		now := time.Now()
		if now.After(deadline) {
			progress := ""
			for _, f := range flows {
				progress += fmt.Sprintf(" %d/%d", f.got, f.total)
			}
			t.Fatalf("not delivered within 60 s: received%s bytes", progress)
		}
		for _, f := range flows {
			f.pump(t, cell.window)
		}
		ca.Update()
		cb.Update()
		linkAB.Deliver(now, func(p []byte) {
			if r := cb.input(p); r != 0 {
				t.Fatalf("%s Input of a %s datagram = %d", b.name, a.name, r)
			}
		})
		linkBA.Deliver(now, func(p []byte) {
			if r := ca.input(p); r != 0 {
				t.Fatalf("%s Input of a %s datagram = %d", a.name, b.name, r)
			}
		})
		for _, f := range flows {
			f.drain(t, buf)
		}
		<-tick.C
	}
	sa, sb := linkAB.Stats(), linkBA.Stats()
	t.Logf("%d bytes per flow in %v; %s→%s %d datagrams (%d lost, %d duplicated); %s→%s %d datagrams (%d lost, %d duplicated)",
		total, time.Since(start).Round(time.Millisecond), a.name, b.name, sa.Sent, sa.Dropped, sa.Duplicated, b.name, a.name, sb.Sent, sb.Dropped, sb.Duplicated)
}
