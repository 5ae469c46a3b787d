package interop

import (
	"encoding/binary"
	"testing"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// segment encodes one KCP segment header followed by payload.
func segment(conv uint32, cmd, frg byte, wnd uint16, ts, sn, una uint32, payload []byte) []byte {
	b := make([]byte, 24+len(payload))
	binary.LittleEndian.PutUint32(b[0:], conv)
	b[4], b[5] = cmd, frg
	binary.LittleEndian.PutUint16(b[6:], wnd)
	binary.LittleEndian.PutUint32(b[8:], ts)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[16:], una)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(payload)))
	copy(b[24:], payload)
	return b
}

// loadFlight brings a core to kcp-go's BenchmarkFlush state through the
// exported API only: 1023 full segments sent once and in flight, none due
// for about a minute. One segment is sent (by Update, which also tells the
// core's clock through the segment's ts) and acked with a timestamp 30 s old,
// which drives the RTO to its 60 s ceiling and opens the peer's window to
// 1024; then 1023 segments go out in one flush. flush gets the core's clock
// as read at the first send; it returns that clock.
func loadFlight(tb testing.TB, c core, flush func(now uint32)) uint32 {
	tb.Helper()
	const conv = 1
	var lastTs uint32
	var sawPush bool
	out := func(buf []byte) {
		for len(buf) >= 24 {
			if buf[4] == 81 {
				lastTs = binary.LittleEndian.Uint32(buf[8:])
				sawPush = true
			}
			buf = buf[24+int(binary.LittleEndian.Uint32(buf[20:])):]
		}
	}
	setOutput(c, out)
	c.NoDelay(0, 10, 0, 1)
	c.WndSize(1024, 1024)
	payload := make([]byte, 1400-24)
	if c.Send(payload) < 0 {
		tb.Fatal("Send refused the first segment")
	}
	c.Update()
	if !sawPush {
		tb.Fatal("the first segment was not sent")
	}
	if r := c.input(segment(conv, 82, 0, 1024, lastTs-30000, 0, 1, nil)); r != 0 {
		tb.Fatalf("Input(ack) = %d", r)
	}
	for range 1023 {
		if c.Send(payload) < 0 {
			tb.Fatal("Send refused a segment")
		}
	}
	sawPush = false
	flush(lastTs)
	if c.WaitSnd() != 1023 {
		tb.Fatalf("WaitSnd = %d after the first flush, want 1023 in flight", c.WaitSnd())
	}
	now := lastTs
	sawPush = false
	flush(now)
	if sawPush {
		tb.Fatal("a segment was due on the second flush; the RTO did not take")
	}
	setOutput(c, nil)
	return now
}

// outputSwitch lets loadFlight watch a core's output and then silence it.
type outputSwitch struct{ f func([]byte) }

func (o *outputSwitch) output(buf []byte, size int) {
	if o.f != nil {
		o.f(buf[:size])
	}
}

var outputs = map[core]*outputSwitch{}

func setOutput(c core, f func([]byte)) { outputs[c].f = f }

func newBenchCore(impl coreImpl) core {
	sw := new(outputSwitch)
	c := impl.new(1, sw.output)
	outputs[c] = sw
	return c
}

func benchFlushKCPGo(b *testing.B) {
	c := newBenchCore(kcpgoCoreImpl)
	k := c.(kcpgoCore).KCP
	loadFlight(b, c, func(uint32) { kcpgoFlush(k, kcpgo.IKCP_FLUSH_FULL) })
	b.ReportAllocs()
	for b.Loop() {
		kcpgoFlush(k, kcpgo.IKCP_FLUSH_FULL)
	}
}

// benchInput measures Input of one full in-order PUSH segment plus the Recv
// that drains it, the receive path of a bulk transfer.
func benchInput(b *testing.B, impl coreImpl) {
	c := impl.new(1, func([]byte, int) {})
	c.WndSize(1024, 1024)
	payload := make([]byte, 1400-24)
	pkt := segment(1, 81, 0, 1024, 0, 0, 0, payload)
	buf := make([]byte, len(payload))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var sn uint32
	for b.Loop() {
		binary.LittleEndian.PutUint32(pkt[12:], sn)
		sn++
		if r := c.input(pkt); r != 0 {
			b.Fatalf("Input = %d", r)
		}
		if n := c.Recv(buf); n != len(payload) {
			b.Fatalf("Recv = %d", n)
		}
	}
}

// BenchmarkFlush is kcp-go's BenchmarkFlush setup (1023 segments in flight,
// none due) run on both cores.
func BenchmarkFlush(b *testing.B) {
	b.Run("kcpgo", benchFlushKCPGo)
	benchFlushKCPX(b)
}

// BenchmarkInput is one in-order full segment through Input and Recv.
func BenchmarkInput(b *testing.B) {
	b.Run("kcpgo", func(b *testing.B) { benchInput(b, kcpgoCoreImpl) })
	benchInputKCPX(b)
}
