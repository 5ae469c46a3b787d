//go:build linux

package kcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is the number of messages one recvmmsg or sendmmsg call moves
// at most (without GRO/GSO, one datagram each). 64 datagrams of 1500 bytes fit a default 208 KiB socket buffer
// with room to spare; beyond that the per-call saving flattens.
const batchSize = 64

// A dialled session's reader starts with smallSlots buffers of one datagram
// each and GRO off: a client that only pings would otherwise hold the full
// layout (16 GRO buffers of 64 KiB, a MiB) for nothing, and a process with
// thousands of client sessions would hold gigabytes. After growAfter calls
// in a row fill every slot, the reader takes the full layout and turns GRO
// on, for good.
const (
	smallSlots = 4
	growAfter  = 2
)

// mmsghdr is the kernel's struct mmsghdr: a msghdr and the byte count of the
// message. Go pads it to the alignment of msghdr as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddrBuf holds a struct sockaddr_in or sockaddr_in6.
type sockaddrBuf [unix.SizeofSockaddrInet6]byte

// batchReader receives with recvmmsg into buffers, iovecs and address slots
// built once. It is used by one goroutine at a time. Plain net.UDPAddr
// values are never built: sources are decoded straight into netip.AddrPort,
// which is what x/net's ReadBatch (one *net.UDPAddr per message) cannot do
// without allocating.
//
// With GRO on, each message has a 64 KiB buffer and a control buffer for the
// UDP_GRO segment size, and a coalesced run is cut back into its datagrams.
type batchReader struct {
	rc       syscall.RawConn
	laddr    net.Addr
	msgs     []mmsghdr
	iovs     []unix.Iovec
	names    []sockaddrBuf
	slab     []byte // len(msgs) buffers of slotSize bytes, back to back
	slotSize int
	slots    int    // datagram slots without GRO: batchSize, or smallSlots until grown
	growable bool   // started small; grows after growAfter full calls in a row
	full     int    // full calls in a row while growable
	limit    int    // largest datagram delivered: mtuLimit, or more for a filter's socket (widen)
	gro      bool   // UDP_GRO is on for the socket
	ctrl     []byte // with gro: cmsgGROSpace bytes per message
	stats    *offloadStats

	recvFn func(fd uintptr) bool // b.recv, bound once so Read does not allocate
	got    int                   // messages filled by the last call
	vlen   int                   // messages the next call may fill: len(msgs), or groBusySlots while runs arrive
	filled bool                  // the last call filled every message it offered: the socket likely holds more
	seg    []int                 // per message of the last call: its datagrams' size, 0 once dropped or delivered
	srcs   []netip.AddrPort      // per message of the last call: its source
	errno  syscall.Errno         // error of the last call
	zones  map[uint32]string     // IPv6 scope id to zone name, filled on demand

	inject syscall.Errno // tests: the next call fails with this errno
}

// newBatchReader returns a recvmmsg reader for conn, or nil when conn has
// no usable file descriptor. It turns UDP_GRO on for the socket when the
// kernel allows it; stats receives the GRO counts.
func newBatchReader(conn *net.UDPConn, stats *offloadStats, small bool) *batchReader {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batchReader{rc: rc, laddr: conn.LocalAddr(), stats: stats, limit: mtuLimit, slots: batchSize}
	if small {
		b.slots, b.growable = smallSlots, true
		b.layout(false)
	} else {
		b.layout(setGRO(rc, true))
	}
	b.recvFn = b.recv
	return b
}

// layout builds the message array for GRO on or off.
func (b *batchReader) layout(gro bool) {
	slots, size := b.slots, b.limit
	if gro {
		slots, size = groSlots, groSlotSize
		b.ctrl = make([]byte, slots*cmsgGROSpace)
	} else {
		b.ctrl = nil
	}
	b.gro, b.slotSize = gro, size
	b.msgs = make([]mmsghdr, slots)
	b.iovs = make([]unix.Iovec, slots)
	b.names = make([]sockaddrBuf, slots)
	b.seg = make([]int, slots)
	b.srcs = make([]netip.AddrPort, slots)
	b.vlen = slots
	b.slab = make([]byte, slots*size)
	for i := range b.msgs {
		b.iovs[i].Base = &b.slab[i*size]
		b.iovs[i].SetLen(size)
		h := &b.msgs[i].hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = &b.names[i][0]
		h.Namelen = uint32(len(b.names[i]))
		if gro {
			h.Control = &b.ctrl[i*cmsgGROSpace]
			h.SetControllen(cmsgGROSpace)
		}
	}
	b.got = slots // reset every header before the next call
}

// wantsGrow reports whether the reader started small and its last
// growAfter calls each filled every slot.
func (b *batchReader) wantsGrow() bool { return b.growable && b.full >= growAfter }

// grow takes the full layout, with GRO on when the kernel allows it, and
// reports whether GRO is on. Call it between reads.
func (b *batchReader) grow() bool {
	b.slots, b.growable = batchSize, false
	b.layout(setGRO(b.rc, true))
	return b.gro
}

// disableGRO turns UDP_GRO off for the socket and goes back to buffers of
// limit bytes. Used before the reader leaves the batch path, whose plain
// reads could not cut coalesced runs apart, and by tests and benchmarks.
func (b *batchReader) disableGRO() {
	if b.gro {
		setGRO(b.rc, false)
		b.layout(false)
	}
}

// stopGRO turns UDP_GRO off for the socket and leaves the buffers as they
// are (they still read whole datagrams correctly).
func (b *batchReader) stopGRO() {
	if b.gro {
		setGRO(b.rc, false)
	}
}

// widen raises the largest datagram the reader delivers to n bytes, for a
// datagram filter's socket, whose datagrams carry the filter's overhead on
// top of the sessions' (udp_filter.go). Call it before the first read.
func (b *batchReader) widen(n int) {
	if n > b.limit {
		b.limit = n
		if !b.gro {
			b.layout(false)
		}
	}
}

// busy reports whether the last call filled every message it offered, so
// the socket is likely to hold more already.
func (b *batchReader) busy() bool { return b.filled }

// groOn reports whether UDP_GRO is on.
func (b *batchReader) groOn() bool { return b.gro }

// recv runs inside RawConn.Read: false asks the runtime to wait until the
// socket is readable (or the deadline passes, or the conn closes).
func (b *batchReader) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(b.vlen), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.got, b.errno = int(n), e
		if e != 0 {
			b.got = 0
		}
		return true
	}
}

// receive makes one recvmmsg call and hands each datagram to handle.
//
// A batch that holds GRO runs (a bulk peer's datagrams, 40 or so a message)
// is delivered lone datagrams first: a message carrying one datagram goes
// before the runs, unless a run from its own source came earlier in the
// batch, so each source's datagrams keep their order while a 64-byte ping
// does not wait behind hundreds of bulk inputs (the session it wakes can
// run on another core meanwhile). While runs arrive, a call takes
// groBusySlots messages instead of all, which bounds the work between two
// looks at the socket: a datagram arriving during a batch waits for at most
// that much input before it is read.
func (b *batchReader) receive(handle func(data []byte, ap netip.AddrPort, addr net.Addr), dropped *atomic.Uint64) error {
	if b.inject != 0 {
		e := b.inject
		b.inject = 0
		return b.opError(os.NewSyscallError("recvmmsg", e))
	}
	for i := range b.msgs[:b.got] {
		h := &b.msgs[i].hdr
		h.Namelen = uint32(len(b.names[i]))
		h.Flags = 0
		if b.gro {
			h.SetControllen(cmsgGROSpace)
		}
	}
	b.got = 0
	if err := b.rc.Read(b.recvFn); err != nil {
		return b.opError(err)
	}
	if b.errno != 0 {
		return b.opError(os.NewSyscallError("recvmmsg", b.errno))
	}
	if b.got > 0 {
		b.stats.rxCalls.Add(1)
	}
	b.filled = b.got == b.vlen
	if b.growable {
		if b.got == len(b.msgs) {
			b.full++
		} else {
			b.full = 0
		}
	}
	runs := 0
	for i := range b.msgs[:b.got] {
		b.seg[i] = b.segment(i, dropped)
		if b.seg[i] > 0 && b.seg[i] < int(b.msgs[i].n) {
			runs++
		}
	}
	b.vlen = len(b.msgs)
	if runs > 0 && groBusySlots < b.vlen {
		b.vlen = groBusySlots
	}
	delivered := 0
	if runs == 0 || runs == b.got {
		for i := range b.msgs[:b.got] {
			delivered += b.deliver(i, handle)
		}
	} else {
		// Lone datagrams first, then the rest in order.
		for i := range b.msgs[:b.got] {
			if b.seg[i] > 0 && b.seg[i] >= int(b.msgs[i].n) && !b.runBefore(i) {
				delivered += b.deliver(i, handle)
				b.seg[i] = 0
			}
		}
		for i := range b.msgs[:b.got] {
			delivered += b.deliver(i, handle)
		}
	}
	b.stats.rxDatagrams.Add(uint64(delivered))
	return nil
}

// segment checks message i of the last call and returns the size of the
// datagrams it carries (its length for one datagram), or 0 when it is
// dropped (truncated, bad source, segments over the limit), counting the
// drop. Message i's source is left in srcs[i].
func (b *batchReader) segment(i int, dropped *atomic.Uint64) int {
	m := &b.msgs[i]
	ap, ok := b.source(i)
	b.srcs[i] = ap
	if m.hdr.Flags&unix.MSG_TRUNC != 0 || !ok {
		dropped.Add(1)
		return 0
	}
	n := int(m.n)
	if !b.gro || n == 0 {
		return max(n, 1) // an empty datagram is one datagram; deliver cuts by n
	}
	seg := n
	if s := groSegmentSize(b.ctrl[i*cmsgGROSpace : i*cmsgGROSpace+int(m.hdr.Controllen)]); s > 0 && s < n {
		seg = s
	}
	if seg > b.limit {
		dropped.Add(uint64((n + seg - 1) / seg))
		return 0
	}
	return seg
}

// runBefore reports whether a GRO run from message i's source comes before
// message i in the last call.
func (b *batchReader) runBefore(i int) bool {
	for j := range i {
		if b.seg[j] > 0 && b.seg[j] < int(b.msgs[j].n) && b.srcs[j] == b.srcs[i] {
			return true
		}
	}
	return false
}

// deliver hands message i's datagrams to handle, cutting a GRO run apart,
// and returns how many it delivered; a message already delivered or dropped
// (seg 0) delivers none.
func (b *batchReader) deliver(i int, handle func(data []byte, ap netip.AddrPort, addr net.Addr)) int {
	seg := b.seg[i]
	if seg <= 0 {
		return 0
	}
	n := int(b.msgs[i].n)
	off := i * b.slotSize
	ap := b.srcs[i]
	if seg >= n { // one datagram, possibly empty
		handle(b.slab[off:off+n:off+n], ap, nil)
		return 1
	}
	b.stats.groSegments.Add(uint64((n + seg - 1) / seg))
	b.stats.groBatches.Add(1)
	cnt := 0
	for end := off + n; off < end; off += seg {
		cnt++
		e := min(off+seg, end)
		handle(b.slab[off:e:e], ap, nil)
	}
	return cnt
}

// source decodes message i's source address without allocating.
func (b *batchReader) source(i int) (netip.AddrPort, bool) {
	sa := &b.names[i]
	n := b.msgs[i].hdr.Namelen
	if n < 4 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), true
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		ip := netip.AddrFrom16([16]byte(sa[8:24]))
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 {
			ip = ip.WithZone(b.zone(scope))
		}
		return netip.AddrPortFrom(ip, port), true
	}
	return netip.AddrPort{}, false
}

// zone names an IPv6 scope id as the net package does (interface name, else
// the number), remembering it so each scope costs one lookup.
func (b *batchReader) zone(scope uint32) string {
	if z, ok := b.zones[scope]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(scope), 10)
	if ifi, err := net.InterfaceByIndex(int(scope)); err == nil {
		z = ifi.Name
	}
	if b.zones == nil {
		b.zones = make(map[uint32]string)
	}
	b.zones[scope] = z
	return z
}

func (b *batchReader) opError(err error) error {
	return &net.OpError{Op: "read", Net: "udp", Source: b.laddr, Err: err}
}

// skMeminfoDrops is SK_MEMINFO_DROPS: the index, in the uint32 array that
// SO_MEMINFO returns, of the datagrams the socket dropped (a full receive
// buffer, mostly). skMeminfoVars is the array's length as of Linux 4.19.
const (
	skMeminfoDrops = 8
	skMeminfoVars  = 9
)

// socketDrops reports how many datagrams the kernel dropped on u's socket
// since it was opened (SO_MEMINFO, Linux 4.19 and later); ok is false when
// the socket cannot say (closed, older kernel).
func socketDrops(u *net.UDPConn) (n uint64, ok bool) {
	rc, err := u.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info [skMeminfoVars]uint32
	size := uint32(unsafe.Sizeof(info))
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	}); err != nil || errno != 0 || size <= skMeminfoDrops*4 {
		return 0, false
	}
	return uint64(info[skMeminfoDrops]), true
}
