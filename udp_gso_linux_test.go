//go:build linux

package kcp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sized builds datagrams of the given sizes, numbered from first.
func sized(first int, sizes ...int) [][]byte {
	pkts := make([][]byte, len(sizes))
	for i, n := range sizes {
		pkts[i] = datagram(first+i, n)
	}
	return pkts
}

func repeat(size, n int) []int { return slices.Repeat([]int{size}, n) }

// ascending returns the sizes 1..n.
func ascending(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestGSOBuildRuns(t *testing.T) {
	tests := []struct {
		name     string
		sizes    []int
		limit    int   // gsoLimit; 0 means mtuLimit
		wantSegs []int // datagrams per message of the first call
	}{
		{"single", []int{1400}, 0, []int{1}},
		{"equal run", repeat(1000, 3), 0, []int{3}},
		{"segment cap", repeat(100, 70), 0, []int{64, 6}},
		{"byte cap", repeat(1400, 50), 0, []int{46, 4}},
		{"byte cap 1500", repeat(mtuLimit, 50), 0, []int{43, 7}},
		{"short last ends run", []int{1400, 1400, 700, 700}, 0, []int{3, 1}},
		{"larger breaks run", []int{1000, 1000, 1000, 1200, 1200, 500, 500, 500}, 0, []int{3, 3, 2}},
		{"growing sizes", []int{1, 24, 100}, 0, []int{1, 1, 1}},
		{"empty datagrams alone", []int{0, 0, 5, 5, 0, 7}, 0, []int{1, 1, 2, 1, 1}},
		{"above gso limit", []int{1400, 1400, 1300, 1300}, 1399, []int{1, 1, 2}},
		{"iovec cap", repeat(10, 600), 0, repeat(gsoMaxSegments, gsoIovs/gsoMaxSegments)},
		{"message cap", ascending(70), 0, repeat(1, batchSize)},
		{"mixed", slices.Concat(repeat(10, 40), []int{20, 10, 30, 10, 40}, repeat(1400, 47)), 0, []int{40, 2, 2, 1, 46, 1}},
	}
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	w := newPacketWriter(tx)
	b := w.batch
	if !b.gso() {
		t.Fatal("GSO probe failed on this kernel")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.gsoLimit = mtuLimit
			if tc.limit != 0 {
				b.gsoLimit = tc.limit
			}
			pkts := sized(0, tc.sizes...)
			msgs, iovs := b.build(outPackets(pkts, netip.MustParseAddrPort("127.0.0.1:9")))
			if tc.wantSegs != nil && !slices.Equal(b.segs[:msgs], tc.wantSegs) {
				t.Fatalf("segments per message %v, want %v", b.segs[:msgs], tc.wantSegs)
			}
			// The iovecs gather exactly the datagrams, in order, and each
			// multi-datagram message names its first datagram's size.
			k := 0
			for m := range msgs {
				h := &b.msgs[m].hdr
				if int(h.Iovlen) != b.segs[m] || h.Iov != &b.iovs[k] {
					t.Fatalf("message %d: iovlen %d at %p", m, h.Iovlen, h.Iov)
				}
				size := len(pkts[k])
				if b.segs[m] > 1 {
					c := b.ctrl[m*cmsgSegSpace : (m+1)*cmsgSegSpace]
					if h.Control != &c[0] || int(h.Controllen) != cmsgSegSpace || groSegmentSizeOf(c, unix.UDP_SEGMENT) != size {
						t.Fatalf("message %d: bad UDP_SEGMENT control message", m)
					}
				} else if h.Control != nil || h.Controllen != 0 {
					t.Fatalf("message %d: single datagram with a control message", m)
				}
				total := 0
				for j := range b.segs[m] {
					p := pkts[k+j]
					if int(b.iovs[k+j].Len) != len(p) || (len(p) > 0 && b.iovs[k+j].Base != &p[0]) {
						t.Fatalf("message %d iovec %d does not point at datagram %d", m, j, k+j)
					}
					if len(p) > size || (j < b.segs[m]-1 && len(p) != size) || (b.segs[m] > 1 && len(p) == 0) {
						t.Fatalf("message %d breaks the GSO size rule at datagram %d", m, k+j)
					}
					total += len(p)
				}
				if b.segs[m] > gsoMaxSegments || total > gsoMaxBytes {
					t.Fatalf("message %d: %d segments, %d bytes", m, b.segs[m], total)
				}
				k += b.segs[m]
			}
			if k != iovs || (k < len(pkts) && msgs < len(b.msgs) && iovs < len(b.iovs)) {
				t.Fatalf("call covers %d of %d datagrams in %d messages", k, len(pkts), msgs)
			}
			for i := range b.iovs[:iovs] {
				b.iovs[i].Base = nil
			}
		})
	}
}

// groSegmentSizeOf reads the uint16 or int payload of a SOL_UDP control
// message of type typ, to check what build wrote.
func groSegmentSizeOf(c []byte, typ int32) int {
	h := (*unix.Cmsghdr)(unsafePointer(&c[0]))
	if h.Level != unix.SOL_UDP || h.Type != typ || int(h.Len) != unix.CmsgLen(2) {
		return -1
	}
	return int(c[unix.CmsgLen(0)]) | int(c[unix.CmsgLen(0)+1])<<8
}

func TestGSOGRORoundTrip(t *testing.T) {
	// Runs of mixed sizes, broken by larger datagrams, short last
	// segments, empty and single datagrams, and more than one call's worth.
	var sizes []int
	for _, run := range [][]int{
		repeat(1400, 100), {700}, repeat(24, 3), {0}, repeat(mtuLimit, 45), {1},
		repeat(1000, 3), repeat(1200, 2), {500, 500, 500}, {1472}, repeat(64, 700), {63}, {1400},
	} {
		sizes = append(sizes, run...)
	}
	pkts := sized(0, sizes...)
	port := func(c *net.UDPConn) uint16 { return localAP(c).Port() }
	self := func(c *net.UDPConn) netip.AddrPort { return localAP(c) }
	tests := []struct {
		name          string
		rxNet, rxAddr string
		txNet, txAddr string
		dest          func(rx *net.UDPConn) netip.AddrPort
	}{
		{"udp4", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0", self},
		{"udp6", "udp6", "[::1]:0", "udp6", "[::1]:0", self},
		{"dualstack-sender-to-v4", "udp4", "127.0.0.1:0", "udp", ":0", func(rx *net.UDPConn) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), port(rx))
		}},
		{"v4-to-dualstack", "udp", ":0", "udp4", "127.0.0.1:0", func(rx *net.UDPConn) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port(rx))
		}},
	}
	for _, tc := range tests {
		for _, mode := range []ioCase{{"gso+gro", ioOffload, ioOffload}, {"gso", ioBatch, ioOffload}} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				rx := listenUDP(t, tc.rxNet, tc.rxAddr)
				tx := listenUDP(t, tc.txNet, tc.txAddr)
				r, w := newPacketReader(rx), newPacketWriter(tx)
				forceMode(t, mode, r, w)
				if n, err := w.write(pkts, tc.dest(rx), nil); n != len(pkts) || err != nil {
					t.Fatalf("write = %d, %v", n, err)
				}
				got := collect(t, r, len(pkts))
				src := localAP(tx)
				if !src.Addr().IsLoopback() { // the dual-stack sender, seen over IPv4
					src = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), src.Port())
				}
				for i, g := range got {
					if !bytes.Equal(g.data, pkts[i]) || g.ap != src {
						t.Fatalf("datagram %d: got %d bytes from %v, want %d bytes from %v",
							i, len(g.data), g.ap, len(pkts[i]), src)
					}
				}
				// Every datagram that has a same-sized or shorter non-empty
				// neighbour went out in a GSO message.
				if w.gsoSegments() < uint64(len(pkts)-10) || w.gsoFallbacks() != 0 {
					t.Fatalf("gsoSegments %d of %d, fallbacks %d", w.gsoSegments(), len(pkts), w.gsoFallbacks())
				}
				wantGRO := uint64(0)
				if mode.reader == ioOffload {
					wantGRO = w.gsoSegments() // loopback keeps each run joined
				}
				if r.groSegments() != wantGRO || r.dropped() != 0 {
					t.Fatalf("groSegments %d, want %d; dropped %d", r.groSegments(), wantGRO, r.dropped())
				}
			})
		}
	}
}

func TestGROSplitsOneRead(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
	}{
		{"short last", append(repeat(1400, 5), 700)},
		{"one byte last", append(repeat(1000, 2), 1)},
		{"equal", repeat(mtuLimit, 4)},
		{"two runs", []int{300, 300, 299, 800, 800}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rx := listenUDP(t, "udp6", "[::1]:0")
			tx := listenUDP(t, "udp6", "[::1]:0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			if !r.groEnabled() || !w.gsoEnabled() {
				t.Fatalf("groEnabled %v, gsoEnabled %v", r.groEnabled(), w.gsoEnabled())
			}
			pkts := sized(7, tc.sizes...)
			if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil {
				t.Fatalf("write = %d, %v", n, err)
			}
			var got [][]byte
			err := r.readOnce(func(d []byte, ap netip.AddrPort, addr net.Addr) {
				if cap(d) != len(d) || ap != localAP(tx) || addr != nil {
					t.Errorf("datagram %d: cap %d len %d from %v/%v", len(got), cap(d), len(d), ap, addr)
				}
				got = append(got, bytes.Clone(d))
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, pkts, bytes.Equal) {
				t.Fatalf("one read delivered %d datagrams (%v), want %v", len(got), lens(got), tc.sizes)
			}
			if r.groSegments() != uint64(len(pkts)) {
				t.Fatalf("groSegments %d, want %d", r.groSegments(), len(pkts))
			}
		})
	}
}

func lens(ps [][]byte) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = len(p)
	}
	return out
}

func TestGROPlainSenders(t *testing.T) {
	// A GRO reader takes datagrams from senders without GSO one per message.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r := newPacketReader(rx)
	pkts := sized(0, repeat(1400, groSlots+3)...)
	for _, p := range pkts {
		if _, err := tx.WriteToUDPAddrPort(p, localAP(rx)); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	var got []received
	for len(got) < len(pkts) {
		calls++
		if err := r.readOnce(func(d []byte, ap netip.AddrPort, _ net.Addr) {
			got = append(got, received{data: bytes.Clone(d), ap: ap})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 || r.groSegments() != 0 {
		t.Fatalf("%d reads, groSegments %d; want 2 reads, 0", calls, r.groSegments())
	}
	for i := range pkts {
		if !bytes.Equal(got[i].data, pkts[i]) || got[i].ap != localAP(tx) {
			t.Fatalf("datagram %d differs", i)
		}
	}
}

func TestGROOversizeSegments(t *testing.T) {
	// A peer's GSO run of 2000-byte segments (larger than any datagram
	// kcpx accepts) is dropped whole and counted per segment; a normal
	// datagram after it is delivered.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r := newPacketReader(rx)
	rc, err := tx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, 2000) })
	if serr != nil {
		t.Fatal(serr)
	}
	if _, err := tx.WriteToUDPAddrPort(make([]byte, 5000), localAP(rx)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.WriteToUDPAddrPort(datagram(1, 10), localAP(rx)); err != nil {
		t.Fatal(err)
	}
	got := collect(t, r, 1)
	if !bytes.Equal(got[0].data, datagram(1, 10)) || r.dropped() != 3 || r.groSegments() != 0 {
		t.Fatalf("got %d bytes, dropped %d, groSegments %d; want the 10-byte datagram, 3 dropped",
			len(got[0].data), r.dropped(), r.groSegments())
	}
}

func TestGSOFallback(t *testing.T) {
	pkts := sized(0, append(repeat(1400, 10), 3, 3, 3)...)
	check := func(t *testing.T, r *packetReader, w *packetWriter, tx *net.UDPConn) {
		t.Helper()
		got := collect(t, r, len(pkts))
		for i := range pkts {
			if !bytes.Equal(got[i].data, pkts[i]) || got[i].ap != localAP(tx) {
				t.Fatalf("datagram %d differs", i)
			}
		}
	}
	for _, errno := range []syscall.Errno{unix.EIO, unix.EINVAL, unix.EOPNOTSUPP} {
		t.Run("injected/"+errno.Error(), func(t *testing.T) {
			rx := listenUDP(t, "udp4", "127.0.0.1:0")
			tx := listenUDP(t, "udp4", "127.0.0.1:0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			w.batch.gsoInject = errno
			if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil {
				t.Fatalf("write = %d, %v", n, err)
			}
			check(t, r, w, tx)
			if w.gsoEnabled() || w.gsoFallbacks() != 1 || w.gsoSegments() != 0 || !w.batching() || w.fallbacks() != 0 {
				t.Fatalf("gsoEnabled %v, gsoFallbacks %d, gsoSegments %d, batching %v, fallbacks %d",
					w.gsoEnabled(), w.gsoFallbacks(), w.gsoSegments(), w.batching(), w.fallbacks())
			}
			// Remembered: the next write sends without GSO at once.
			if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil || w.gsoSegments() != 0 {
				t.Fatalf("second write = %d, %v, gsoSegments %d", n, err, w.gsoSegments())
			}
			check(t, r, w, tx)
		})
	}
	t.Run("kernel-refusal", func(t *testing.T) {
		// With UDP checksums off (SO_NO_CHECK) the kernel refuses every
		// GSO message with EINVAL but sends plain datagrams.
		rx := listenUDP(t, "udp4", "127.0.0.1:0")
		tx := listenUDP(t, "udp4", "127.0.0.1:0")
		rc, err := tx.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
		if serr != nil {
			t.Fatal(serr)
		}
		r, w := newPacketReader(rx), newPacketWriter(tx)
		if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
		check(t, r, w, tx)
		if w.gsoEnabled() || w.gsoFallbacks() != 1 || w.gsoSegments() != 0 {
			t.Fatalf("gsoEnabled %v, gsoFallbacks %d, gsoSegments %d", w.gsoEnabled(), w.gsoFallbacks(), w.gsoSegments())
		}
	})
	t.Run("einval-above-carried-size", func(t *testing.T) {
		// After GSO carried 1300-byte segments, EINVAL for 1400-byte ones
		// reads as a path MTU between the two: GSO stays on below 1400.
		rx := listenUDP(t, "udp4", "127.0.0.1:0")
		tx := listenUDP(t, "udp4", "127.0.0.1:0")
		r, w := newPacketReader(rx), newPacketWriter(tx)
		small, big := sized(0, repeat(1300, 4)...), sized(4, repeat(1400, 4)...)
		steps := []struct {
			pkts          [][]byte
			inject        syscall.Errno
			segs, refused uint64
		}{{small, 0, 4, 0}, {big, unix.EINVAL, 4, 1}, {big, 0, 4, 1}, {small, 0, 8, 1}}
		for i, s := range steps {
			w.batch.gsoInject = s.inject
			if n, err := w.write(s.pkts, localAP(rx), nil); n != len(s.pkts) || err != nil {
				t.Fatalf("step %d: write = %d, %v", i, n, err)
			}
			got := collect(t, r, len(s.pkts))
			if !slices.EqualFunc(got, s.pkts, func(g received, p []byte) bool { return bytes.Equal(g.data, p) }) {
				t.Fatalf("step %d: datagrams differ", i)
			}
			if w.gsoSegments() != s.segs || w.gsoFallbacks() != s.refused || !w.gsoEnabled() {
				t.Fatalf("step %d: gsoSegments %d, gsoFallbacks %d, gsoEnabled %v; want %d, %d, true",
					i, w.gsoSegments(), w.gsoFallbacks(), w.gsoEnabled(), s.segs, s.refused)
			}
		}
	})
	t.Run("not-gso-fault", func(t *testing.T) {
		// The kernel refuses port 0 with EINVAL whatever the message: the
		// retry without GSO fails too, so GSO stays on and the error is
		// returned.
		tx := listenUDP(t, "udp4", "127.0.0.1:0")
		w := newPacketWriter(tx)
		n, err := w.write(pkts, netip.MustParseAddrPort("127.0.0.1:0"), nil)
		var oe *net.OpError
		if n != 0 || !errors.Is(err, unix.EINVAL) || !errors.As(err, &oe) {
			t.Fatalf("write to port 0 = %d, %v", n, err)
		}
		if !w.gsoEnabled() || w.gsoFallbacks() != 0 || !w.batching() {
			t.Fatalf("gsoEnabled %v, gsoFallbacks %d, batching %v", w.gsoEnabled(), w.gsoFallbacks(), w.batching())
		}
	})
}

func TestGROFallbackTurnsGROOff(t *testing.T) {
	// When recvmmsg is refused the reader turns GRO off, so the plain path
	// (one datagram per read, mtuLimit+1 bytes) gets runs already split.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(tx)
	r.batch.inject = unix.ENOSYS
	if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) {}); err != nil {
		t.Fatal(err)
	}
	if r.batching() || r.groEnabled() || r.fallbacks() != 1 {
		t.Fatalf("batching %v, groEnabled %v, fallbacks %d", r.batching(), r.groEnabled(), r.fallbacks())
	}
	pkts := sized(0, repeat(1400, 20)...)
	if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	got := collect(t, r, len(pkts))
	for i := range pkts {
		if !bytes.Equal(got[i].data, pkts[i]) {
			t.Fatalf("datagram %d differs", i)
		}
	}
	if w.gsoSegments() != uint64(len(pkts)) || r.dropped() != 0 {
		t.Fatalf("gsoSegments %d, dropped %d", w.gsoSegments(), r.dropped())
	}
}

func TestGROSegmentSize(t *testing.T) {
	msg := func(level, typ int32, data ...byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafePointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	le := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	gro := msg(unix.SOL_UDP, unix.UDP_GRO, le(1400)...)
	other := msg(unix.SOL_IP, unix.IP_TOS, 1)
	bad := slices.Clone(gro)
	(*unix.Cmsghdr)(unsafePointer(&bad[0])).SetLen(len(bad) + 8)
	short := slices.Clone(gro)
	(*unix.Cmsghdr)(unsafePointer(&short[0])).SetLen(3)
	tests := []struct {
		name string
		ctrl []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", gro, 1400},
		{"after another", slices.Concat(other, gro), 1400},
		{"other only", other, 0},
		{"length past end", bad, 0},
		{"length below header", short, 0},
		{"cut header", gro[:4], 0},
		{"cut payload", gro[:unix.CmsgLen(0)+2], 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := groSegmentSize(tc.ctrl); got != tc.want {
				t.Fatalf("groSegmentSize = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestGSOZeroAllocsMixedRuns(t *testing.T) {
	sizes := slices.Concat(repeat(1400, 20), []int{700, 100}, repeat(64, 10), []int{1472, 1472, 9})
	for _, mode := range []ioCase{{"gso+gro", ioOffload, ioOffload}, {"gso", ioBatch, ioOffload}} {
		t.Run(mode.name, func(t *testing.T) {
			rx := listenUDP(t, "udp6", "[::1]:0")
			tx := listenUDP(t, "udp6", "[::1]:0")
			r, w := newPacketReader(rx), newPacketWriter(tx)
			forceMode(t, mode, r, w)
			pkts := sized(0, sizes...)
			batch := outPackets(pkts, localAP(rx))
			got, bad := 0, 0
			handle := func(d []byte, _ netip.AddrPort, _ net.Addr) {
				if got >= len(sizes) || len(d) != sizes[got] {
					bad++
				}
				got++
			}
			var failure error
			round := func() {
				got = 0
				if _, err := w.send(batch); err != nil && failure == nil {
					failure = err
				}
				for got < len(pkts) && failure == nil {
					if err := r.readOnce(handle); err != nil {
						failure = err
					}
				}
			}
			round()
			allocs := testing.AllocsPerRun(50, round)
			if failure != nil || bad != 0 || allocs != 0 {
				t.Fatalf("%v allocations per round of %d datagrams (want 0); error %v; %d bad", allocs, len(pkts), failure, bad)
			}
			if w.gsoSegments() == 0 || (mode.reader == ioOffload) != (r.groSegments() > 0) {
				t.Fatalf("gsoSegments %d, groSegments %d", w.gsoSegments(), r.groSegments())
			}
		})
	}
}

func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }

func TestGROReleaseForCallerOwnedConn(t *testing.T) {
	// After release a caller reading the socket itself gets a GSO sender's
	// run as separate datagrams again.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	tx := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(tx)
	if !r.groEnabled() {
		t.Fatal("GRO not enabled")
	}
	r.release()
	if r.groEnabled() {
		t.Fatal("groEnabled after release")
	}
	pkts := sized(0, repeat(1000, 5)...)
	if n, err := w.write(pkts, localAP(rx), nil); n != len(pkts) || err != nil || w.gsoSegments() != 5 {
		t.Fatalf("write = %d, %v, gsoSegments %d", n, err, w.gsoSegments())
	}
	buf := make([]byte, 1<<16)
	for i, p := range pkts {
		n, _, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("read %d: %d bytes, %v", i, n, err)
		}
	}
}

func TestGROLoneDatagramsFirst(t *testing.T) {
	// One read holding a bulk peer's GRO runs and another peer's lone
	// datagram delivers the lone one first; a source's own datagrams keep
	// their order (bulk's lone datagram after its run stays after it).
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	bulk := listenUDP(t, "udp4", "127.0.0.1:0")
	ping := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(bulk)
	if !r.groEnabled() || !w.gsoEnabled() {
		t.Skipf("needs UDP GSO and GRO: groEnabled %v, gsoEnabled %v", r.groEnabled(), w.gsoEnabled())
	}
	run1, run2 := sized(1, repeat(1400, 20)...), sized(100, repeat(1200, 10)...)
	for _, run := range [][][]byte{run1, run2} {
		if n, err := w.write(run, localAP(rx), nil); n != len(run) || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
	}
	if _, err := ping.WriteToUDPAddrPort(datagram(7, 64), localAP(rx)); err != nil {
		t.Fatal(err)
	}
	if _, err := bulk.WriteToUDPAddrPort(datagram(8, 64), localAP(rx)); err != nil {
		t.Fatal(err)
	}
	var got []received
	if err := r.readOnce(func(d []byte, ap netip.AddrPort, _ net.Addr) {
		got = append(got, received{data: bytes.Clone(d), ap: ap})
	}); err != nil {
		t.Fatal(err)
	}
	want := []received{{data: datagram(7, 64), ap: localAP(ping)}}
	for _, p := range append(append(run1, run2...), datagram(8, 64)) {
		want = append(want, received{data: p, ap: localAP(bulk)})
	}
	if len(got) != len(want) {
		t.Fatalf("one read delivered %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) || got[i].ap != want[i].ap {
			t.Fatalf("datagram %d: %d bytes from %v, want %d bytes from %v", i, len(got[i].data), got[i].ap, len(want[i].data), want[i].ap)
		}
	}
}

func TestGROBusyCallsTakeFewerMessages(t *testing.T) {
	// After a read that held GRO runs, the next read takes at most
	// groBusySlots messages, so a datagram arriving behind bulk waits for
	// that much input only; a read of lone datagrams takes a full batch again.
	rx := listenUDP(t, "udp4", "127.0.0.1:0")
	bulk := listenUDP(t, "udp4", "127.0.0.1:0")
	ping := listenUDP(t, "udp4", "127.0.0.1:0")
	r, w := newPacketReader(rx), newPacketWriter(bulk)
	if !r.groEnabled() || !w.gsoEnabled() {
		t.Skipf("needs UDP GSO and GRO: groEnabled %v, gsoEnabled %v", r.groEnabled(), w.gsoEnabled())
	}
	if n, err := w.write(sized(1, repeat(1400, 8)...), localAP(rx), nil); n != 8 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	count := func() int {
		n := 0
		if err := r.readOnce(func([]byte, netip.AddrPort, net.Addr) { n++ }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 8 {
		t.Fatalf("first read delivered %d, want the run of 8", n)
	}
	const lone = groSlots + groBusySlots
	for i := range lone {
		if _, err := ping.WriteToUDPAddrPort(datagram(i, 64), localAP(rx)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != groBusySlots {
		t.Fatalf("read after runs delivered %d, want %d", n, groBusySlots)
	}
	if n := count(); n != groSlots {
		t.Fatalf("read after lone datagrams delivered %d, want %d", n, groSlots)
	}
}
