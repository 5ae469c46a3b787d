package kcp

import (
	"errors"
	"testing"
)

// TestSetCongestionControlNames: every known name selects its controller,
// an unknown one is refused with ErrUnknownCongestionControl and changes
// nothing, and NoDelay's nc keeps selecting the legacy modes only.
func TestSetCongestionControlNames(t *testing.T) {
	k := NewKCP(1, func([]byte, int) {})
	if got := k.congestionControl(); got != CongestionKCP {
		t.Fatalf("default controller %q, want %q", got, CongestionKCP)
	}
	for _, name := range []string{CongestionBBR, CongestionCUBIC, CongestionNone, CongestionKCP} {
		if err := k.SetCongestionControl(name); err != nil {
			t.Fatalf("SetCongestionControl(%q) = %v", name, err)
		}
		if got := k.congestionControl(); got != name {
			t.Fatalf("after SetCongestionControl(%q): %q", name, got)
		}
	}
	k.SetCongestionControl(CongestionBBR)
	if err := k.SetCongestionControl("reno"); !errors.Is(err, ErrUnknownCongestionControl) {
		t.Fatalf("unknown name: %v, want ErrUnknownCongestionControl", err)
	}
	if got := k.congestionControl(); got != CongestionBBR {
		t.Fatalf("a refused name changed the controller to %q", got)
	}
	k.NoDelay(1, 10, 2, 1)
	if got := k.congestionControl(); got != CongestionBBR {
		t.Fatalf("NoDelay nc=1 replaced bbr: %q", got)
	}
	k.SetCongestionControl(CongestionKCP)
	if k.nocwnd {
		t.Fatal(`"kcp" left congestion control off`)
	}
	k.NoDelay(-1, -1, -1, 1)
	if got := k.congestionControl(); got != CongestionNone {
		t.Fatalf("NoDelay nc=1 under kcp: %q, want none", got)
	}
}

// TestWritableBound: with a large send window and a small congestion
// window, the application may queue only the write bound beyond the
// window (kcp-go queued the whole send window: #141); the bound is
// settable; and in the default configuration (send window 32) the old rule
// still decides.
func TestWritableBound(t *testing.T) {
	chunk := make([]byte, 16<<10)
	fill := func(k *KCP) int {
		total := 0
		for k.writable() {
			if room := k.writeRoom(); room <= 0 {
				t.Fatalf("writable with writeRoom %d", room)
			}
			k.Send(chunk)
			total += len(chunk)
		}
		if k.writeRoom() != 0 {
			t.Fatalf("not writable but writeRoom %d", k.writeRoom())
		}
		return total
	}
	for _, cc := range []string{CongestionKCP, CongestionNone, CongestionBBR, CongestionCUBIC} {
		t.Run(cc, func(t *testing.T) {
			k := NewKCP(1, func([]byte, int) {})
			k.WndSize(4096, 4096)
			k.rmtWnd = 4096
			k.SetCongestionControl(cc)
			k.flush(0, IKCP_FLUSH_FULL)
			limit := k.writeLimit()
			queued := fill(k)
			k.flush(0, IKCP_FLUSH_FULL)
			inWindow := k.sndBuf.len() * int(k.mss)
			switch cc {
			case CongestionNone:
				// the send window is the congestion window: 4096 segments
				if k.sndBuf.len() != 4096 && queued < 4096*int(k.mss) {
					t.Fatalf("none: %d segments admitted after %d bytes queued", k.sndBuf.len(), queued)
				}
			default:
				if queued > inWindow+limit+len(chunk) {
					t.Fatalf("%d bytes queued with %d in the window, bound %d", queued, inWindow, limit)
				}
				if queued >= 4096*int(k.mss) {
					t.Fatalf("the whole send window was queued (%d bytes)", queued)
				}
			}
			waiting := 0
			for i := range k.sndQueue.len() {
				waiting += len(k.sndQueue.at(i).data)
			}
			if k.cc.queued != waiting {
				t.Fatalf("queued count %d, send queue holds %d bytes", k.cc.queued, waiting)
			}
			k.setWriteLimit(1 << 20)
			more := fill(k)
			if cc != CongestionNone && (more == 0 || k.cc.queued > 1<<20+len(chunk)) {
				t.Fatalf("a 1 MiB bound let %d more bytes in, %d queued", more, k.cc.queued)
			}
		})
	}
	// Default windows: 32 segments decide, as before.
	k := NewKCP(1, func([]byte, int) {})
	small := make([]byte, 100)
	n := 0
	for k.writable() {
		k.Send(small)
		n++
	}
	if n != IKCP_WND_SND {
		t.Fatalf("default KCP took %d one-segment writes, want %d", n, IKCP_WND_SND)
	}
}

// ccStep moves msg from a to b and b's echo back over p at time now,
// tolerating the pacer: a sends only while it has little queued, and
// whatever arrived is read. It returns the bytes a read back.
func ccStep(a, b *KCP, p *pipe, msg, buf []byte, now uint32) int {
	if a.WaitSnd() < 16 {
		a.Send(msg)
	}
	a.flush(now, IKCP_FLUSH_FULL)
	p.to(0, b, now)
	for {
		n := b.Recv(buf)
		if n < 0 {
			break
		}
		b.Send(buf[:n])
	}
	b.flush(now, IKCP_FLUSH_FULL)
	p.to(1, a, now)
	got := 0
	for {
		n := a.Recv(buf)
		if n < 0 {
			return got
		}
		got += n
	}
}

// TestControllerSteadyStateAllocs: with a controller, the rate sampler and
// the pacer, warm traffic both ways allocates nothing.
func TestControllerSteadyStateAllocs(t *testing.T) {
	for _, cc := range []string{CongestionBBR, CongestionCUBIC} {
		t.Run(cc, func(t *testing.T) {
			a, b := newPair(presetFast3, false, 128)
			a.SetCongestionControl(cc)
			b.SetCongestionControl(cc)
			p := newPipe(a, b)
			msg := make([]byte, 3000)
			buf := make([]byte, 4096)
			now := uint32(0)
			for range 1000 {
				now += 5
				ccStep(a, b, p, msg, buf, now)
			}
			got := 0
			allocs := testing.AllocsPerRun(1000, func() {
				now += 5
				got += ccStep(a, b, p, msg, buf, now)
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per step, want 0", allocs)
			}
			if got < 500*len(msg) {
				t.Fatalf("only %d bytes came back in 1000 steps", got)
			}
			if cwnd, rate, _, _ := a.ccState(); cwnd == 0 || rate == 0 {
				t.Fatalf("controller state cwnd %d pacing %d", cwnd, rate)
			}
		})
	}
}

// BenchmarkControllerStep: a 1 KiB message each way per 5 ms step, with
// each controller: what the controller, the rate sampler and the pacer
// cost per packet (0 allocations).
func BenchmarkControllerStep(b *testing.B) {
	for _, cc := range []string{CongestionNone, CongestionKCP, CongestionBBR, CongestionCUBIC} {
		b.Run(cc, func(b *testing.B) {
			a, c := newPair(presetFast3, false, 128)
			a.SetCongestionControl(cc)
			c.SetCongestionControl(cc)
			p := newPipe(a, c)
			msg := make([]byte, 1024)
			buf := make([]byte, 2048)
			now := uint32(0)
			b.SetBytes(2 * int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				now += 5
				ccStep(a, c, p, msg, buf, now)
			}
		})
	}
}

// TestUpdateReleasesPaced: a bare core driven the kcp-go way, Update at
// the times Check names, sends at its controller's pacing rate. Check names
// the moment the pacer has tokens again; Update used to flush only on the
// interval, so a controller's 2 ms bucket let out a fifth of the rate.
func TestUpdateReleasesPaced(t *testing.T) {
	now := uint32(0)
	sent := 0
	k := NewKCP(1, func(buf []byte, size int) { sent += size })
	k.clock = func() uint32 { return now }
	k.NoDelay(1, 10, 2, 1)
	k.WndSize(1024, 1024)
	k.rmtWnd = 1024 // as if the peer had said so; nothing is acknowledged
	if err := k.SetCongestionControl(CongestionCUBIC); err != nil {
		t.Fatal(err)
	}
	k.cc.ctl = &fixedCC{wnd: 1024, rate: 1_000_000}
	k.ccApplyPace(k.usAt(now))
	for range 64 {
		k.Send(make([]byte, 64<<10))
	}
	k.Update()
	for now < 1000 {
		now = max(k.Check(), now+1)
		k.Update()
	}
	if sent < 900_000 {
		t.Fatalf("%d bytes left in 1 s at a pacing rate of 1,000,000 B/s", sent)
	}
	t.Logf("%d bytes in 1 s at 1,000,000 B/s", sent)
}

// fixedCC is a controller with a fixed window and pacing rate.
type fixedCC struct {
	wnd  uint32
	rate uint64
}

func (f *fixedCC) onSend(uint64, uint32, int, bool, uint32) {}
func (f *fixedCC) onAck(uint64, *rateSample)                {}
func (f *fixedCC) onLoss(uint64, uint32, int, uint32)       {}
func (f *fixedCC) onTimeout(uint64, uint32, uint32)         {}
func (f *fixedCC) timeoutVerdict(uint64, bool)              {}
func (f *fixedCC) window() uint32                           { return f.wnd }
func (f *fixedCC) pacingRate() uint64                       { return f.rate }
func (f *fixedCC) minRTT() uint32                           { return 0 }
