//go:build linux

package kcp

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchWriter sends with sendmmsg from a message array built once. Each
// message carries its own destination (names[i]), so one call can serve
// several peers: the sessions of a listener share one. The caller
// (packetWriter, on the socket's sender goroutine) serialises calls.
//
// With GSO each message gathers a run of equal-sized datagrams for one
// destination (the last may be shorter) through one iovec per datagram, with
// a UDP_SEGMENT control message: nothing is copied and one call carries up
// to len(iovs) datagrams.
type batchWriter struct {
	rc        syscall.RawConn
	laddr     net.Addr
	family    int  // the socket's: unix.AF_INET or unix.AF_INET6
	connected bool // the socket has a peer: messages carry no address
	msgs      []mmsghdr
	iovs      []unix.Iovec // one per datagram of a call
	names     []sockaddrBuf

	gsoState        // guarded like the message array
	ctrl     []byte // cmsgSegSpace bytes per message
	segs     []int  // datagrams in message i of the current call
	segSize  []int  // segment size of message i of the current call
	stats    *offloadStats

	sendFn func(fd uintptr) bool // b.sendmmsg, bound once so Write does not allocate
	count  int                   // messages to send in this call
	sent   int                   // messages the last call sent
	errno  syscall.Errno         // error of the last call

	inject    syscall.Errno // tests: the next call fails with this errno
	gsoInject syscall.Errno // tests: the next call whose first message uses GSO fails with this errno
}

// gsoState is what the writer has learnt of the kernel's GSO support.
type gsoState struct {
	gsoOn    bool // the socket knows UDP_SEGMENT and the kernel has not refused it
	gsoLimit int  // largest segment size sent with GSO (lowered by EINVAL)
	gsoOK    int  // largest segment size GSO has carried so far
}

// gsoIovs is the number of datagrams one sendmmsg call carries at most with
// GSO on (16 B of iovec each): eight full 64-segment messages.
const gsoIovs = 8 * gsoMaxSegments

// newBatchWriter returns a sendmmsg writer for conn, or nil when conn has no
// usable file descriptor or an unknown address family. GSO is used when the
// socket answers the UDP_SEGMENT probe; stats receives its counts.
func newBatchWriter(conn *net.UDPConn, connected bool, stats *offloadStats) *batchWriter {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	family := -1
	if cerr := rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
			family = v
		}
	}); cerr != nil || (family != unix.AF_INET && family != unix.AF_INET6) {
		return nil
	}
	b := &batchWriter{
		rc:        rc,
		laddr:     conn.LocalAddr(),
		family:    family,
		connected: connected,
		msgs:      make([]mmsghdr, batchSize),
		names:     make([]sockaddrBuf, batchSize),
		segs:      make([]int, batchSize),
		segSize:   make([]int, batchSize),
		stats:     stats,
		gsoState:  gsoState{gsoOn: probeGSO(rc), gsoLimit: mtuLimit},
	}
	if b.gsoOn {
		b.iovs = make([]unix.Iovec, gsoIovs)
		b.ctrl = make([]byte, batchSize*cmsgSegSpace)
		for i := range b.msgs {
			putSegmentCmsg(b.ctrl[i*cmsgSegSpace:], 0)
		}
	} else {
		b.iovs = make([]unix.Iovec, batchSize)
	}
	for i := range b.msgs {
		h := &b.msgs[i].hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		if !connected {
			h.Name = &b.names[i][0]
		}
	}
	b.sendFn = b.sendmmsg
	return b
}

// gso reports whether the writer sends runs with GSO.
func (b *batchWriter) gso() bool { return b.gsoOn }

// disableGSO stops GSO for good (tests and benchmarks force the batch path).
func (b *batchWriter) disableGSO() { b.gsoOn = false }

// sendmmsg runs inside RawConn.Write: false asks the runtime to wait until
// the socket is writable (or the deadline passes, or the conn closes). It
// enters the kernel through unix.Syscall6, which tells the scheduler: a
// sendmmsg to loopback does the receiver's kernel work inline, and a GC stop
// or another goroutine must not wait for it.
func (b *batchWriter) sendmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(b.count), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.sent, b.errno = int(n), e
		if e != 0 {
			b.sent = 0
		}
		return true
	}
}

// send writes pkts in order, in calls of up to batchSize messages. ok is
// false when the first datagram's destination cannot be encoded (an IPv6
// zone, a family the socket does not have) and nothing was sent: the caller
// sends that one on the plain path. Otherwise it returns how many datagrams
// were sent and the error that stopped it, if any (the datagram at index n
// is the one that failed). A GSO message the kernel refuses (gsoRefused) is
// sent again without GSO in the same call of send: nothing is lost.
func (b *batchWriter) send(pkts []outPacket) (n int, ok bool, err error) {
	if b.inject != 0 {
		e := b.inject
		b.inject = 0
		return 0, true, b.opError(os.NewSyscallError("sendmmsg", e), pkts[0].to)
	}
	// While retrying, the datagrams of a refused GSO message go out again
	// without GSO and saved holds the GSO state from before the refusal: if
	// they fail as well, the error was not GSO's (a bad destination, say),
	// so the state comes back and nothing is counted.
	retrying, saved := false, b.gsoState
	for n < len(pkts) {
		msgs, iovs := b.build(pkts[n:])
		if msgs == 0 {
			return n, n > 0, nil // the next destination needs the plain path
		}
		b.count, b.sent, b.errno = msgs, 0, 0
		var err error
		if b.gsoInject != 0 && b.segs[0] > 1 {
			b.errno, b.gsoInject = b.gsoInject, 0
		} else {
			err = b.rc.Write(b.sendFn)
		}
		for i := range b.iovs[:iovs] {
			b.iovs[i].Base = nil // do not keep the caller's buffers reachable
		}
		if err == nil && b.errno != 0 && b.segs[0] > 1 && gsoRefused(b.errno) && !retrying {
			retrying, saved = true, b.gsoState
			b.refuseGSO(b.errno, b.segSize[0])
			continue
		}
		if retrying && (err != nil || b.errno != 0 || b.sent == 0) {
			b.gsoState = saved
		}
		switch {
		case err != nil:
			return n, true, b.opError(err, pkts[n].to)
		case b.errno != 0:
			return n, true, b.opError(os.NewSyscallError("sendmmsg", b.errno), pkts[n].to)
		case b.sent == 0:
			return n, true, b.opError(io.ErrShortWrite, pkts[n].to)
		}
		if retrying {
			b.stats.gsoFallbacks.Add(1)
			retrying = false
		}
		b.stats.txCalls.Add(1)
		for i := range b.sent {
			n += b.segs[i]
			if b.segs[i] > 1 {
				b.stats.gsoSegments.Add(uint64(b.segs[i]))
				b.stats.gsoBatches.Add(1)
				b.gsoOK = max(b.gsoOK, b.segSize[i])
			}
		}
	}
	return n, true, nil
}

// build fills the message array from pkts for one sendmmsg call and returns
// the number of messages and iovecs used. Without GSO every datagram is one
// message. With GSO a message takes a run: datagrams for one destination of
// one size up to gsoLimit, the last of the run possibly shorter (but not
// empty), at most gsoMaxSegments of them and gsoMaxBytes in all. It stops
// before a datagram whose destination it cannot encode.
func (b *batchWriter) build(pkts []outPacket) (msgs, iovs int) {
	for i := 0; i < len(pkts) && msgs < len(b.msgs) && iovs < len(b.iovs); msgs++ {
		var nameLen uint32
		if !b.connected {
			var ok bool
			if nameLen, ok = b.encode(msgs, pkts[i].to); !ok {
				break
			}
		}
		size := len(pkts[i].b)
		b.setIov(iovs, pkts[i].b)
		cnt, total := 1, size
		if b.gsoOn && size > 0 && size <= b.gsoLimit {
			for j := i + 1; j < len(pkts) && cnt < gsoMaxSegments && iovs+cnt < len(b.iovs); j++ {
				l := len(pkts[j].b)
				if l == 0 || l > size || total+l > gsoMaxBytes || (!b.connected && pkts[j].to != pkts[i].to) {
					break
				}
				b.setIov(iovs+cnt, pkts[j].b)
				cnt++
				total += l
				if l < size {
					break
				}
			}
		}
		h := &b.msgs[msgs].hdr
		h.Iov = &b.iovs[iovs]
		h.SetIovlen(cnt)
		h.Namelen = nameLen
		if cnt > 1 {
			c := b.ctrl[msgs*cmsgSegSpace : (msgs+1)*cmsgSegSpace]
			binary.NativeEndian.PutUint16(c[unix.CmsgLen(0):], uint16(size))
			h.Control = &c[0]
			h.SetControllen(cmsgSegSpace)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		b.segs[msgs], b.segSize[msgs] = cnt, size
		i += cnt
		iovs += cnt
	}
	return msgs, iovs
}

func (b *batchWriter) setIov(i int, p []byte) {
	b.iovs[i].Base = nil
	if len(p) > 0 {
		b.iovs[i].Base = &p[0]
	}
	b.iovs[i].SetLen(len(p))
}

// refuseGSO handles the kernel refusing a GSO message of segments of size
// bytes: GSO is turned off for this writer, except that an
// EINVAL for a size larger than any GSO has carried, above gsoMinLimit, is
// taken for a path MTU below that size: GSO then stays on for smaller
// segments (a listener's peers may sit behind links of different MTUs).
func (b *batchWriter) refuseGSO(errno syscall.Errno, size int) {
	if errno == unix.EINVAL && b.gsoOK > 0 && size > b.gsoOK && size-1 >= gsoMinLimit {
		b.gsoLimit = size - 1
		return
	}
	b.gsoOn = false
}

// encode writes to's socket address, in the socket's family, into the name
// of message i.
func (b *batchWriter) encode(i int, to netip.AddrPort) (uint32, bool) {
	if !to.IsValid() || to.Addr().Zone() != "" {
		return 0, false
	}
	name := &b.names[i]
	clear(name[:])
	binary.BigEndian.PutUint16(name[2:4], to.Port())
	if b.family == unix.AF_INET {
		if !to.Addr().Is4() {
			return 0, false // the plain path reports the family mismatch
		}
		binary.NativeEndian.PutUint16(name[0:2], unix.AF_INET)
		a := to.Addr().As4()
		copy(name[4:8], a[:])
		return unix.SizeofSockaddrInet4, true
	}
	binary.NativeEndian.PutUint16(name[0:2], unix.AF_INET6)
	a := to.Addr().As16() // IPv4 becomes ::ffff:a.b.c.d
	copy(name[8:24], a[:])
	return unix.SizeofSockaddrInet6, true
}

func (b *batchWriter) opError(err error, to netip.AddrPort) error {
	var addr net.Addr
	if to.IsValid() {
		addr = net.UDPAddrFromAddrPort(to)
	}
	return &net.OpError{Op: "write", Net: "udp", Source: b.laddr, Addr: addr, Err: err}
}
