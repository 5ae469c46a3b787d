package interop

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	kcpx "github.com/kcpx/kcp"
	kcpgo "github.com/xtaci/kcp-go/v5"
)

// The bottleneck of kcpx's TestBottleneck (kcp_cc_sim_test.go), here with
// kcp-go's core beside kcpx's: a 20 Mbit/s drop-tail FIFO with a buffer of
// one BDP, 20 ms of propagation each way, random loss on the data
// direction before the bottleneck, ACKs never lost. kcp-go's core reads the
// real clock, so this runs in real time with a 1 ms tick (all cells of one
// loss rate at once), unlike the main module's virtual-time sim: its
// figures are noisier and on a loaded machine the tick slips.

const (
	btRate   = 2_500_000 // bytes/s: 20 Mbit/s
	btDelay  = 20 * time.Millisecond
	btBuffer = btRate * 40 / 1000 // one BDP of the 40 ms base RTT, bytes
	btUDP    = 28                 // IPv4 + UDP header bytes per datagram on the link
	btWindow = 512                // segments, both windows of every core
	btPush   = 81                 // IKCP_CMD_PUSH
)

// lazyInput feeds a datagram without ACK-no-delay, as a session does by
// default: ACKs leave on the receiver's next flush.
func (c kcpgoCore) lazyInput(data []byte) int {
	return c.Input(data, kcpgo.IKCP_PACKET_REGULAR, false)
}
func (c kcpxCore) lazyInput(data []byte) int { return c.Input(data, kcpx.IKCP_PACKET_REGULAR, false) }

type btCore interface {
	core
	lazyInput(data []byte) int
}

// btVariant is one sender (and its receiver) in the table.
type btVariant struct {
	name      string
	snd, rcv  func(conv uint32, out func([]byte, int)) btCore
	nc        int    // NoDelay's nc on the sender
	congestor string // kcpx SetCongestionControl on the sender ("": none)
}

func btKCPGo(conv uint32, out func([]byte, int)) btCore {
	return kcpgoCore{kcpgo.NewKCP(conv, out)}
}
func btKCPX(conv uint32, out func([]byte, int)) btCore { return kcpxCore{kcpx.NewKCP(conv, out)} }

var btVariants = []btVariant{
	{"kcp-go nc=0", btKCPGo, btKCPGo, 0, ""},
	{"kcp-go nc=1", btKCPGo, btKCPGo, 1, ""},
	{"kcpx nc=0", btKCPX, btKCPX, 0, ""},
	{"kcpx nc=1", btKCPX, btKCPX, 1, ""},
	{"kcpx bbr", btKCPX, btKCPX, 1, kcpx.CongestionBBR},
	{"kcpx bbr → kcp-go", btKCPX, btKCPGo, 1, kcpx.CongestionBBR},
}

type btTimed struct {
	at   time.Duration
	data []byte
}

// btCell is one sender and receiver across the bottleneck.
type btCell struct {
	v        btVariant
	snd, rcv btCore
	rng      *rand.Rand
	fwd, rev []btTimed
	busy     time.Duration // when the bottleneck finishes what it holds
	sentSn   []bool
	rcvdSn   []bool
	msg      []byte
	buf      []byte
	measure  bool
	fresh    uint64 // new payload bytes that reached the receiver while measuring
	lost     uint64 // payload+header bytes of data datagrams dropped while measuring
	retx     uint64 // bytes of data segments sent again while measuring
	queueUs  []float64
	loss     float64
	now      func() time.Duration
}

// eachSeg calls fn with the header and length (header included) of each
// whole KCP segment of datagram d, until fn returns false.
func eachSeg(d []byte, fn func(hdr []byte, n int) bool) {
	for len(d) >= 24 {
		n := 24 + int(binary.LittleEndian.Uint32(d[20:]))
		if n > len(d) || !fn(d[:24], n) {
			return
		}
		d = d[n:]
	}
}

// pushes calls fn for each PUSH segment in datagram d: its sn and bytes.
func pushes(d []byte, fn func(sn uint32, n int)) int {
	total := 0
	eachSeg(d, func(h []byte, n int) bool {
		if h[4] == btPush {
			fn(binary.LittleEndian.Uint32(h[12:]), n)
			total += n
		}
		return true
	})
	return total
}

func grow(b []bool, i uint32) []bool {
	for int(i) >= len(b) {
		b = append(b, make([]bool, 4096)...)
	}
	return b
}

func newBTCell(v btVariant, loss float64, seed uint64, now func() time.Duration) *btCell {
	c := &btCell{v: v, rng: rand.New(rand.NewPCG(seed, seed+7)), loss: loss, now: now,
		msg: make([]byte, 8*1376), buf: make([]byte, 256*1400)}
	c.snd = v.snd(0x5eed, c.output)
	c.rcv = v.rcv(0x5eed, func(b []byte, n int) {
		c.rev = append(c.rev, btTimed{at: c.now() + btDelay, data: append([]byte(nil), b[:n]...)})
	})
	c.snd.NoDelay(1, 10, 2, v.nc)
	c.rcv.NoDelay(1, 10, 2, 1)
	c.snd.WndSize(btWindow, btWindow)
	c.rcv.WndSize(btWindow, btWindow)
	if v.congestor != "" {
		if err := c.snd.(kcpxCore).SetCongestionControl(v.congestor); err != nil {
			panic(err)
		}
	}
	return c
}

// output is the sender's datagrams entering the bottleneck.
func (c *btCell) output(b []byte, size int) {
	data := b[:size]
	push := pushes(data, func(sn uint32, n int) {
		c.sentSn = grow(c.sentSn, sn)
		if c.sentSn[sn] && c.measure {
			c.retx += uint64(n)
		}
		c.sentSn[sn] = true
	})
	if push > 0 && c.rng.Float64() < c.loss {
		if c.measure {
			c.lost += uint64(push)
		}
		return
	}
	at := c.now()
	start := max(at, c.busy)
	wire := size + btUDP
	if int64(start-at)*btRate/int64(time.Second)+int64(wire) > btBuffer {
		if c.measure {
			c.lost += uint64(push)
		}
		return
	}
	if push > 0 && c.measure {
		c.queueUs = append(c.queueUs, float64(start-at)/float64(time.Microsecond))
	}
	c.busy = start + time.Duration(wire)*time.Second/btRate
	c.fwd = append(c.fwd, btTimed{at: c.busy + btDelay, data: append([]byte(nil), data...)})
}

// step runs one tick: arrivals, the applications, the cores' timers.
func (c *btCell) step(t *testing.T) {
	now := c.now()
	for len(c.fwd) > 0 && c.fwd[0].at <= now {
		p := c.fwd[0].data
		c.fwd = c.fwd[1:]
		pushes(p, func(sn uint32, n int) {
			c.rcvdSn = grow(c.rcvdSn, sn)
			if !c.rcvdSn[sn] && c.measure {
				c.fresh += uint64(n - 24)
			}
			c.rcvdSn[sn] = true
		})
		if r := c.rcv.lazyInput(p); r != 0 {
			t.Fatalf("%s: receiver Input = %d", c.v.name, r)
		}
	}
	for len(c.rev) > 0 && c.rev[0].at <= now {
		p := c.rev[0].data
		c.rev = c.rev[1:]
		if r := c.snd.lazyInput(p); r != 0 {
			t.Fatalf("%s: sender Input = %d", c.v.name, r)
		}
	}
	for c.rcv.Recv(c.buf) >= 0 {
	}
	for c.snd.WaitSnd() < 2*btWindow {
		c.snd.Send(c.msg)
	}
	c.snd.Update()
	c.rcv.Update()
}

type btRow struct {
	goodput, p95, lost, retx float64
}

func (c *btCell) result(measured time.Duration) btRow {
	r := btRow{goodput: float64(c.fresh) / measured.Seconds() / btRate, lost: float64(c.lost), retx: float64(c.retx)}
	if len(c.queueUs) > 0 {
		slices.Sort(c.queueUs)
		r.p95 = c.queueUs[len(c.queueUs)*95/100] / 1000
	}
	return r
}

// TestBottleneckKCPGo prints, for kcp-go's core (nc=0 and nc=1) and
// kcpx's (nc=0, nc=1, BBR, and BBR sending to a kcp-go receiver), goodput
// as a share of the link, p95 queueing delay and retransmitted against
// lost bytes through the 20 Mbit/s bottleneck at 0, 1, 5 and 10 % loss.
// 1 s warm-up and 5 s measured per loss rate; 2 s and 12 s with KCPX_FULL.
// It asserts only that every cell moved data: the figures are the output.
// With -modfile=go57.mod the kcp-go columns are v5.7.6's.
func TestBottleneckKCPGo(t *testing.T) {
	warm, measure := time.Second, 5*time.Second
	if os.Getenv("KCPX_FULL") != "" {
		warm, measure = 2*time.Second, 12*time.Second
	}
	if testing.Short() || raceEnabled {
		warm, measure = 500*time.Millisecond, time.Second
	}
	losses := []float64{0, 0.01, 0.05, 0.10}
	rows := make(map[string][]btRow)
	for li, loss := range losses {
		start := time.Now()
		now := func() time.Duration { return time.Since(start) }
		cells := make([]*btCell, len(btVariants))
		for i, v := range btVariants {
			cells[i] = newBTCell(v, loss, uint64(li*16+i+1), now)
		}
		tick := time.NewTicker(time.Millisecond)
		measuring := false
		var mStart time.Duration
		for {
			el := now()
			if !measuring && el >= warm {
				measuring, mStart = true, el
				for _, c := range cells {
					c.measure = true
				}
			}
			if measuring && el-mStart >= measure {
				break
			}
			for _, c := range cells {
				c.step(t)
			}
			<-tick.C
		}
		tick.Stop()
		measured := now() - mStart
		for _, c := range cells {
			r := c.result(measured)
			if r.goodput <= 0 {
				t.Errorf("%s at %.0f%% loss moved no data", c.v.name, loss*100)
			}
			rows[c.v.name] = append(rows[c.v.name], r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n20 Mbit/s, 1 BDP drop-tail, 40 ms RTT, real time; %v measured after %v per loss rate\n", measure, warm)
	fmt.Fprintf(&b, "goodput %% of link / p95 queueing ms / retransmitted÷lost bytes\n")
	fmt.Fprintf(&b, "| sender → receiver | 0 %% | 1 %% | 5 %% | 10 %% |\n|---|---|---|---|---|\n")
	for _, v := range btVariants {
		fmt.Fprintf(&b, "| %s |", v.name)
		for _, r := range rows[v.name] {
			ratio := "–"
			if r.lost > 0 {
				ratio = fmt.Sprintf("%.2f", r.retx/r.lost)
			}
			fmt.Fprintf(&b, " %.1f / %.1f / %s |", r.goodput*100, r.p95, ratio)
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}
