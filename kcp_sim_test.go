package kcp

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The simulated link: two KCPs joined by a virtual network with a virtual
// millisecond clock, seeded loss, delay with jitter (which reorders) and
// duplication. Nothing here reads the real clock or sleeps.

type simPacket struct {
	at   uint32 // virtual ms of delivery
	seq  uint64 // tie-break so equal times keep send order
	to   int
	data []byte
}

type simQueue []simPacket

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if d := int32(q[i].at - q[j].at); d != 0 {
		return d < 0
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simPacket)) }
func (q *simQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

type linkConfig struct {
	loss   float64 // probability a datagram is dropped
	dup    float64 // probability a datagram is delivered twice
	delay  uint32  // one-way base delay, ms
	jitter uint32  // extra uniform delay in [0, jitter), ms
}

type simLink struct {
	cfg   linkConfig
	now   uint32
	rng   *rand.Rand
	q     simQueue
	seq   uint64
	ends  [2]*KCP
	pool  [][]byte
	sent  [2]int
	drops [2]int
	// tap, when set, sees every datagram an end emits, before loss.
	tap func(from int, data []byte)
	// blocked, when set, drops everything an end emits.
	blocked [2]bool
}

func newSimLink(seed uint64, cfg linkConfig, a, b *KCP) *simLink {
	l := &simLink{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ends: [2]*KCP{a, b}}
	a.output = func(buf []byte, size int) { l.emit(0, buf[:size]) }
	b.output = func(buf []byte, size int) { l.emit(1, buf[:size]) }
	return l
}

func (l *simLink) buf(data []byte) []byte {
	var b []byte
	if n := len(l.pool); n > 0 {
		b = l.pool[n-1][:0]
		l.pool = l.pool[:n-1]
	}
	return append(b, data...)
}

func (l *simLink) emit(from int, data []byte) {
	if l.tap != nil {
		l.tap(from, data)
	}
	l.sent[from]++
	if l.blocked[from] || l.rng.Float64() < l.cfg.loss {
		l.drops[from]++
		return
	}
	copies := 1
	if l.rng.Float64() < l.cfg.dup {
		copies = 2
	}
	for range copies {
		at := l.now + l.cfg.delay
		if l.cfg.jitter > 0 {
			at += l.rng.Uint32N(l.cfg.jitter)
		}
		l.seq++
		heap.Push(&l.q, simPacket{at: at, seq: l.seq, to: 1 - from, data: l.buf(data)})
	}
}

// deliver inputs every datagram due at l.now.
func (l *simLink) deliver() {
	for len(l.q) > 0 && int32(l.q[0].at-l.now) <= 0 {
		p := heap.Pop(&l.q).(simPacket)
		l.ends[p.to].input(l.now, p.data, IKCP_PACKET_REGULAR, false)
		l.pool = append(l.pool, p.data)
	}
}

// nextEvent is the earliest virtual time something happens: a delivery or a
// timer of either end.
func (l *simLink) nextEvent() uint32 {
	next := l.now + 1000
	for _, k := range l.ends {
		if t := k.check(l.now); int32(t-next) < 0 {
			next = t
		}
	}
	if len(l.q) > 0 && int32(l.q[0].at-next) < 0 {
		next = l.q[0].at
	}
	if int32(next-l.now) <= 0 {
		next = l.now + 1
	}
	return next
}

// preset is a (nodelay, interval, resend, nc) tuple of kcptun.
type preset struct {
	name                          string
	nodelay, interval, resend, nc int
}

var (
	presetNormal = preset{"normal", 0, 40, 2, 1}
	presetFast3  = preset{"fast3", 1, 10, 2, 1}
)

func newPair(p preset, stream bool, wnd int) (*KCP, *KCP) {
	a := NewKCP(0x5eed, nil)
	b := NewKCP(0x5eed, nil)
	for _, k := range []*KCP{a, b} {
		k.NoDelay(p.nodelay, p.interval, p.resend, p.nc)
		k.WndSize(wnd, wnd)
		k.setStream(stream)
	}
	return a, b
}

// endpoint is one application on the simulated link: it writes its payload
// in chunks and reads and checks what the peer wrote.
type endpoint struct {
	k       *KCP
	out     []byte // what this end sends
	sent    int
	msgs    []int  // message sizes still to send (message mode)
	in      []byte // what the peer sends, expected here
	got     int
	want    []int // message sizes expected (message mode)
	rbuf    []byte
	paused  bool
	doneAt  uint32
	stream  bool
	rng     *rand.Rand
	backlog int // segments Send may leave queued before the app waits
}

func (e *endpoint) write(now uint32) {
	wrote := false
	for e.sent < len(e.out) && e.k.WaitSnd() < e.backlog {
		var n int
		if e.stream {
			n = min(1+e.rng.IntN(8000), len(e.out)-e.sent)
		} else {
			n = e.msgs[0]
			e.msgs = e.msgs[1:]
		}
		if r := e.k.Send(e.out[e.sent : e.sent+n]); r != 0 {
			panic(fmt.Sprintf("Send(%d bytes) = %d", n, r))
		}
		e.sent += n
		wrote = true
	}
	if wrote {
		e.k.flush(now, IKCP_FLUSH_FULL)
	}
}

func (e *endpoint) read(t *testing.T, now uint32) {
	t.Helper()
	if e.paused {
		return
	}
	for {
		n := e.k.Recv(e.rbuf)
		if n == -1 {
			return
		}
		if n < 0 {
			t.Fatalf("Recv = %d with a %d-byte buffer, PeekSize %d", n, len(e.rbuf), e.k.PeekSize())
		}
		if !e.stream {
			if len(e.want) == 0 || n != e.want[0] {
				t.Fatalf("message boundary lost: read %d bytes, want message of %v", n, e.want[:min(1, len(e.want))])
			}
			e.want = e.want[1:]
		}
		if e.got+n > len(e.in) || !bytes.Equal(e.rbuf[:n], e.in[e.got:e.got+n]) {
			t.Fatalf("data mismatch at offset %d (%d bytes)", e.got, n)
		}
		e.got += n
		if e.got == len(e.in) && e.doneAt == 0 {
			e.doneAt = now
		}
	}
}

// messageSizes splits total into message sizes: mostly small, some of a few
// segments, a few of the largest size Send accepts.
func messageSizes(rng *rand.Rand, total, maxMsg, mss int) []int {
	var sizes []int
	for total > 0 {
		var n int
		switch r := rng.IntN(100); {
		case r < 60:
			n = 1 + rng.IntN(mss)
		case r < 95:
			n = 1 + rng.IntN(8*mss)
		default:
			n = maxMsg - rng.IntN(mss)
		}
		n = min(n, total)
		sizes = append(sizes, n)
		total -= n
	}
	return sizes
}

type transferResult struct {
	doneA, doneB uint32 // virtual ms at which each end had all the peer's bytes
	link         *simLink
}

// transfer moves size bytes each way over the link and returns when both
// ends have everything, or fails the test past limit virtual ms.
func transfer(t *testing.T, seed uint64, cfg linkConfig, a, b *KCP, stream bool, size int, limit uint32, setup func(l *simLink)) transferResult {
	t.Helper()
	l := newSimLink(seed, cfg, a, b)
	rng := rand.New(rand.NewPCG(seed, 7))
	payload := [2][]byte{make([]byte, size), make([]byte, size)}
	for i := range payload {
		for j := range payload[i] {
			payload[i][j] = byte(rng.Uint32())
		}
	}
	var ends [2]*endpoint
	for i, k := range []*KCP{a, b} {
		ends[i] = &endpoint{k: k, out: payload[i], in: payload[1-i], stream: stream,
			rbuf: make([]byte, max(k.maxMessageSize(), 1<<16)), rng: rand.New(rand.NewPCG(seed, uint64(i))),
			backlog: 2 * k.sendWindow()}
	}
	if !stream {
		for i := range ends {
			sizes := messageSizes(rand.New(rand.NewPCG(seed, uint64(10+i))), size, ends[i].k.maxMessageSize(), ends[i].k.segmentSize())
			ends[i].msgs = sizes
			ends[1-i].want = sizes
		}
	}
	if setup != nil {
		setup(l)
	}
	start := l.now
	for {
		l.deliver()
		for _, e := range ends {
			e.read(t, l.now)
			e.write(l.now)
		}
		for _, k := range l.ends {
			k.update(l.now)
		}
		if ends[0].doneAt != 0 && ends[1].doneAt != 0 {
			break
		}
		if int32(l.now-start) > int32(limit) {
			t.Fatalf("not done after %d virtual ms: A has %d/%d, B has %d/%d (dead %v %v)",
				limit, ends[0].got, size, ends[1].got, size, a.dead(), b.dead())
		}
		l.now = l.nextEvent()
	}
	return transferResult{doneA: ends[0].doneAt - start, doneB: ends[1].doneAt - start, link: l}
}

// TestLossMatrix moves 4 MiB each way through every combination of loss
// rate, mode and kcptun preset, over a link with 20..35 ms one-way delay
// (so datagrams reorder) and 1% duplication, and logs the virtual time each
// cell took.
func TestLossMatrix(t *testing.T) {
	size := 4 << 20
	if raceEnabled {
		size = 1 << 20 // a single-goroutine simulation: the race detector only slows it
	}
	losses := []float64{0, 0.01, 0.05, 0.10, 0.20, 0.30}
	var table []*lossRow
	// Each cell is a pure simulation on its own virtual clock: the cells go
	// in parallel (on the race detector they cost seconds of CPU each),
	// and the table is logged once all are done.
	t.Cleanup(func() { logLossTable(t, size, losses, table) })
	for _, p := range []preset{presetNormal, presetFast3} {
		for _, stream := range []bool{true, false} {
			mode := map[bool]string{true: "stream", false: "message"}[stream]
			r := &lossRow{name: p.name + "/" + mode, times: make([]uint32, len(losses))}
			for i, loss := range losses {
				name := fmt.Sprintf("%s/%s/loss%02d", p.name, mode, int(loss*100))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					a, b := newPair(p, stream, 256)
					cfg := linkConfig{loss: loss, dup: 0.01, delay: 20, jitter: 15}
					// the bound: a generous multiple of the slowest cell measured
					res := transfer(t, uint64(1000+i), cfg, a, b, stream, size, 60_000, nil)
					done := max(res.doneA, res.doneB)
					r.times[i] = done
					t.Logf("%s: done in %d virtual ms (A %d, B %d), datagrams sent %v dropped %v",
						name, done, res.doneA, res.doneB, res.link.sent, res.link.drops)
				})
			}
			table = append(table, r)
		}
	}
}

// lossRow is one line of TestLossMatrix's table: virtual ms per loss rate.
type lossRow struct {
	name  string
	times []uint32
}

// logLossTable logs TestLossMatrix's table.
func logLossTable(t *testing.T, size int, losses []float64, table []*lossRow) {
	hdr := fmt.Sprintf("virtual ms to move %d MiB each way |", size>>20)
	for _, loss := range losses {
		hdr += fmt.Sprintf(" %5.0f%% |", loss*100)
	}
	t.Log(hdr)
	for _, r := range table {
		line := fmt.Sprintf("%-34s |", r.name)
		for _, v := range r.times {
			line += fmt.Sprintf(" %6d |", v)
		}
		t.Log(line)
	}
}

// TestCongestionControlTransfer runs with congestion control on (nc 0) and
// the default settings, so slow start, AIMD and the RTO collapse are used.
func TestCongestionControlTransfer(t *testing.T) {
	for _, loss := range []float64{0, 0.05, 0.2} {
		t.Run(fmt.Sprintf("loss%02d", int(loss*100)), func(t *testing.T) {
			a, b := newPair(preset{"cc", 0, 20, 2, 0}, true, 128)
			res := transfer(t, 77, linkConfig{loss: loss, delay: 15, jitter: 10}, a, b, true, 1<<20, 300_000, nil)
			st := a.takeStats()
			t.Logf("nc=0 loss %.0f%%: done in %d virtual ms; A stats %+v", loss*100, max(res.doneA, res.doneB), st)
			if loss > 0 && st.RetransSegs == 0 {
				t.Fatalf("no retransmissions counted on a lossy link: %+v", st)
			}
		})
	}
}

// setSeq moves every sequence number of k to sn, as if sn segments had
// already been exchanged: the test hook for the 2^32 wrap.
func setSeq(k *KCP, sn uint32) {
	k.sndUna, k.sndNxt, k.rcvNxt = sn, sn, sn
}

// TestSequenceWrap moves 4 MiB each way through 5% loss starting 300
// segments before the 2^32 wrap, so every comparison sees both sides of it.
func TestSequenceWrap(t *testing.T) {
	parallelTest(t)
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "message"}[stream], func(t *testing.T) {
			a, b := newPair(presetFast3, stream, 256)
			start := uint32(0xFFFFFFFF - 300)
			setSeq(a, start)
			setSeq(b, start)
			res := transfer(t, 99, linkConfig{loss: 0.05, dup: 0.01, delay: 20, jitter: 15}, a, b, stream, 4<<20, 120_000, nil)
			for _, k := range []*KCP{a, b} {
				if k.sndNxt >= start || k.rcvNxt >= start {
					t.Fatalf("sequence did not wrap: sndNxt %#x rcvNxt %#x", k.sndNxt, k.rcvNxt)
				}
				if k.sndNxt < 1000 {
					t.Fatalf("too few segments after the wrap: sndNxt %#x", k.sndNxt)
				}
			}
			t.Logf("across the wrap: done in %d virtual ms, sndNxt now %#x", max(res.doneA, res.doneB), a.sndNxt)
		})
	}
}

// countCmds returns a tap that counts segments per cmd and sender.
func countCmds(counts *[2][256]int) func(int, []byte) {
	return func(from int, data []byte) {
		for len(data) >= IKCP_OVERHEAD {
			n := int(uint32(data[20]) | uint32(data[21])<<8 | uint32(data[22])<<16 | uint32(data[23])<<24)
			counts[from][data[4]]++
			data = data[IKCP_OVERHEAD+n:]
		}
	}
}

// TestZeroWindowRecovers stops the receiving application for 5 virtual
// seconds: the sender sees a zero window, probes with WASK at the 500 ms,
// x1.5 schedule, and once the application reads again the receiver reports
// its window (WINS) and the transfer completes.
func TestZeroWindowRecovers(t *testing.T) {
	a, b := newPair(presetFast3, true, 32)
	const size = 1 << 20
	l := newSimLink(5, linkConfig{delay: 10}, a, b)
	var counts [2][256]int
	l.tap = countCmds(&counts)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make([]byte, 0, size)
	rbuf := make([]byte, 1<<16)
	sent := 0
	// The receiving application does not read until the sender has seen a
	// zero window, and then for 5 more seconds.
	var zeroAt, resumeAt, reopenAt, doneAt uint32
	var wasksWhilePaused, winsBeforeResume int
	for l.now < 60_000 {
		l.deliver()
		if zeroAt == 0 && a.rmtWnd == 0 {
			zeroAt = l.now
		}
		if zeroAt != 0 && int32(l.now-(zeroAt+5000)) >= 0 {
			if resumeAt == 0 {
				resumeAt = l.now
				wasksWhilePaused = counts[0][IKCP_CMD_WASK]
				winsBeforeResume = counts[1][IKCP_CMD_WINS]
			}
			for {
				n := b.Recv(rbuf)
				if n < 0 {
					break
				}
				got = append(got, rbuf[:n]...)
			}
		}
		for sent < size && a.WaitSnd() < 64 {
			n := min(4096, size-sent)
			a.Send(data[sent : sent+n])
			sent += n
		}
		a.update(l.now)
		b.update(l.now)
		if resumeAt != 0 && reopenAt == 0 && a.rmtWnd > 0 {
			reopenAt = l.now
		}
		if len(got) == size {
			doneAt = l.now
			break
		}
		l.now = l.nextEvent()
	}
	if doneAt == 0 {
		t.Fatalf("transfer did not finish: %d of %d bytes", len(got), size)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data mismatch")
	}
	if wasksWhilePaused < 3 {
		t.Fatalf("sender sent %d window probes during a 5 s zero window, want >= 3", wasksWhilePaused)
	}
	if counts[1][IKCP_CMD_WINS] <= winsBeforeResume {
		t.Fatal("receiver did not report its reopened window")
	}
	// the receiver tells at its next 10 ms flush; the path is 10 ms. Without
	// the report the sender would wait for its next probe, 1.6 s later.
	if reopenAt == 0 || reopenAt-resumeAt > 50 {
		t.Fatalf("sender saw the window reopen %d ms after the reader resumed, want <= 50", reopenAt-resumeAt)
	}
	t.Logf("zero window at %d ms, %d WASK during the stall, reader resumed at %d, sender saw the window at %d, done at %d",
		zeroAt, wasksWhilePaused, resumeAt, reopenAt, doneAt)
}

// TestWindowGrowthAdvertised: a receiver whose 32-segment window is full and
// whose application is not reading enlarges its window; the sender must
// learn it at the receiver's next flush, not at its next window probe.
func TestWindowGrowthAdvertised(t *testing.T) {
	a, b := newPair(presetNormal, true, 32)
	a.WndSize(1024, 0)
	l := newSimLink(6, linkConfig{delay: 10}, a, b)
	data := make([]byte, 200*a.segmentSize())
	a.Send(data)
	// run until the sender sees a zero window
	for a.rmtWnd != 0 && l.now < 10_000 {
		l.deliver()
		a.update(l.now)
		b.update(l.now)
		l.now = l.nextEvent()
	}
	if a.rmtWnd != 0 {
		t.Fatal("sender never saw a zero window")
	}
	// let the sender settle into probing, then grow the receive window
	end := l.now + 100
	for l.now < end {
		l.deliver()
		a.update(l.now)
		b.update(l.now)
		l.now = l.nextEvent()
	}
	grownAt := l.now
	b.WndSize(0, 1024)
	for a.rmtWnd == 0 && l.now < grownAt+5000 {
		l.deliver()
		a.update(l.now)
		b.update(l.now)
		l.now = l.nextEvent()
	}
	// one receiver interval (40 ms) plus the 10 ms path, with slack
	if took := l.now - grownAt; a.rmtWnd == 0 || took > 100 {
		t.Fatalf("sender learnt the grown window after %d ms (rmtWnd %d), want <= 100 ms", took, a.rmtWnd)
	}
}

// TestMismatchedMtu: ends with different MTUs still talk; the receiver with
// the smaller MTU stores the peer's larger segments.
func TestMismatchedMtu(t *testing.T) {
	a, b := newPair(presetFast3, true, 128)
	a.SetMtu(1500)
	b.SetMtu(576)
	res := transfer(t, 11, linkConfig{loss: 0.05, delay: 10, jitter: 5}, a, b, true, 1<<20, 30_000, nil)
	t.Logf("mtu 1500 <-> 576: done in %d virtual ms", max(res.doneA, res.doneB))
}

// TestPacing: a paced sender releases no more than its burst plus the rate,
// keeps close to the rate, and, because a segment's RTO starts when it
// leaves, never retransmits on a clean link although its window holds far
// more than one RTO of the rate.
func TestPacing(t *testing.T) {
	const (
		rate  = 200_000 // bytes/s
		extra = 40      // bytes the layers below add per datagram
		size  = 512 << 10
	)
	a, b := newPair(presetFast3, true, 256)
	a.setPace(0, rate, extra)
	burst := int64(max(rate*20/1000, 4*(IKCP_MTU_DEF+extra)))
	var (
		first, last uint32
		started     bool
		total       int64
		worst       int64 // most bytes beyond burst + rate*elapsed
		acks        int64 // bytes of datagrams holding no data, never held back
	)
	var l *simLink
	// No jitter: reordering would cause fast retransmissions of its own.
	res := transfer(t, 77, linkConfig{delay: 20}, a, b, true, size, 30_000, func(sl *simLink) {
		l = sl
		l.tap = func(from int, data []byte) {
			if from != 0 {
				return
			}
			if !started {
				started, first = true, l.now
			}
			last = l.now
			total += int64(len(data) + extra)
			if !holdsPush(data) {
				acks += int64(len(data) + extra)
			}
			allowed := burst + acks + int64(l.now-first)*rate/1000
			worst = max(worst, total-allowed)
		}
	})
	if st := a.takeStats(); st.RetransSegs != 0 {
		t.Errorf("paced sender retransmitted on a clean link: %+v", st)
	}
	// Emission is checked against the bucket before a datagram is built, so
	// data may overrun it by at most one datagram (ACKs are not held back).
	if worst > IKCP_MTU_DEF+extra {
		t.Errorf("sent %d bytes beyond burst + rate", worst)
	}
	elapsed := float64(last-first) / 1000
	if got := float64(total) / elapsed; got < 0.9*rate || got > 1.05*rate+float64(burst)/elapsed {
		t.Errorf("paced at %.0f B/s over %.2f s, want about %d", got, elapsed, rate)
	}
	t.Logf("%d B in %d virtual ms: %.0f B/s on the wire (limit %d), overrun %d B; B done at %d ms",
		total, last-first, float64(total)/elapsed, rate, worst, res.doneB)

	// Out of tokens, the core asks to be woken when they allow the next
	// segment: not now, and not a whole interval later.
	c, _ := newPair(presetFast3, true, 256)
	c.output = func([]byte, int) {}
	c.setPace(0, rate, extra)
	for range 64 {
		c.Send(make([]byte, 1000))
	}
	c.update(0)
	if next := c.check(0); next == 0 || next > 10 {
		t.Errorf("check after the burst = %d, want within (0, 10] ms", next)
	}
	if next := c.check(0); next != c.paceWait(0, 0) {
		t.Errorf("check = %d, paceWait = %d", next, c.paceWait(0, 0))
	}
}

// holdsPush reports whether a datagram of the core carries a data segment.
func holdsPush(d []byte) bool {
	return anySeg(d, func(h []byte) bool { return h[4] == IKCP_CMD_PUSH })
}

// anySeg reports whether f holds for the header of any KCP segment of the
// datagram d (IKCP_OVERHEAD bytes each).
func anySeg(d []byte, f func(hdr []byte) bool) bool {
	for len(d) >= IKCP_OVERHEAD {
		if f(d[:IKCP_OVERHEAD]) {
			return true
		}
		n := IKCP_OVERHEAD + int(binary.LittleEndian.Uint32(d[20:]))
		if n > len(d) {
			return false
		}
		d = d[n:]
	}
	return false
}

// TestPacingIgnoresAcks: a paced core that acknowledges a fast peer still
// has its whole burst for its own data: ACK-only datagrams are not charged.
func TestPacingIgnoresAcks(t *testing.T) {
	c, d := newPair(presetFast3, false, 4096)
	var pushes, ackBytes int
	c.output = func(buf []byte, size int) {
		if holdsPush(buf[:size]) {
			pushes++
		} else {
			ackBytes += size
		}
	}
	var in [][]byte
	d.output = func(buf []byte, size int) { in = append(in, append([]byte(nil), buf[:size]...)) }
	c.setPace(0, 1000, 40)
	c.rmtWnd, d.rmtWnd = 4096, 4096
	for range 2000 {
		d.Send(make([]byte, 1300))
	}
	d.flush(0, IKCP_FLUSH_FULL)
	// Segment 0 is lost: every later one is acknowledged on its own.
	for _, p := range in[1:] {
		c.input(0, p, IKCP_PACKET_REGULAR, false)
	}
	c.flush(0, IKCP_FLUSH_ACKONLY)
	c.Send([]byte("after the acks"))
	c.flush(0, IKCP_FLUSH_FULL)
	if ackBytes < 40_000 || pushes != 1 {
		t.Fatalf("after %d B of ACKs at 1000 B/s, %d data datagrams left at once, want 1", ackBytes, pushes)
	}
}
