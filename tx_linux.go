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

// batchWriter sends with sendmmsg from a message array built once. Every
// message of a call goes to one destination, encoded once into name. The
// caller (packetWriter) serialises calls.
type batchWriter struct {
	rc        syscall.RawConn
	laddr     net.Addr
	family    int  // the socket's: unix.AF_INET or unix.AF_INET6
	connected bool // the socket has a peer: messages carry no address
	msgs      []mmsghdr
	iovs      []unix.Iovec
	name      sockaddrBuf

	sendFn func(fd uintptr) bool // b.sendmmsg, bound once so Write does not allocate
	count  int                   // messages to send in this call
	sent   int                   // messages the last call sent
	errno  syscall.Errno         // error of the last call

	inject syscall.Errno // tests: the next call fails with this errno
}

// newBatchWriter returns a sendmmsg writer for conn, or nil when conn has no
// usable file descriptor or an unknown address family.
func newBatchWriter(conn *net.UDPConn, connected bool) *batchWriter {
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
		iovs:      make([]unix.Iovec, batchSize),
	}
	for i := range b.msgs {
		h := &b.msgs[i].hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		if !connected {
			h.Name = &b.name[0]
		}
	}
	b.sendFn = b.sendmmsg
	return b
}

// sendmmsg runs inside RawConn.Write: false asks the runtime to wait until
// the socket is writable (or the deadline passes, or the conn closes).
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

// send writes pkts to `to` in calls of up to batchSize messages. ok is false
// when it cannot encode the destination (an IPv6 zone) and sent nothing: the
// caller then uses the plain path. Otherwise it returns how many were sent
// and the first error.
func (b *batchWriter) send(pkts [][]byte, to netip.AddrPort) (n int, ok bool, err error) {
	var nameLen uint32
	if !b.connected {
		if nameLen, ok = b.encode(to); !ok {
			return 0, false, nil
		}
	}
	if b.inject != 0 {
		e := b.inject
		b.inject = 0
		return 0, true, b.opError(os.NewSyscallError("sendmmsg", e), to)
	}
	for n < len(pkts) {
		chunk := pkts[n:min(n+batchSize, len(pkts))]
		for i, p := range chunk {
			if len(p) > 0 {
				b.iovs[i].Base = &p[0]
			}
			b.iovs[i].SetLen(len(p))
			b.msgs[i].hdr.Namelen = nameLen
		}
		b.count, b.sent, b.errno = len(chunk), 0, 0
		err := b.rc.Write(b.sendFn)
		for i := range chunk {
			b.iovs[i].Base = nil // do not keep the caller's buffers reachable
		}
		switch {
		case err != nil:
			return n, true, b.opError(err, to)
		case b.errno != 0:
			return n, true, b.opError(os.NewSyscallError("sendmmsg", b.errno), to)
		case b.sent == 0:
			return n, true, b.opError(io.ErrShortWrite, to)
		}
		n += b.sent
	}
	return n, true, nil
}

// encode writes to's socket address, in the socket's family, into b.name.
func (b *batchWriter) encode(to netip.AddrPort) (uint32, bool) {
	if to.Addr().Zone() != "" {
		return 0, false
	}
	clear(b.name[:])
	binary.BigEndian.PutUint16(b.name[2:4], to.Port())
	if b.family == unix.AF_INET {
		if !to.Addr().Is4() {
			return 0, false // the plain path reports the family mismatch
		}
		binary.NativeEndian.PutUint16(b.name[0:2], unix.AF_INET)
		a := to.Addr().As4()
		copy(b.name[4:8], a[:])
		return unix.SizeofSockaddrInet4, true
	}
	binary.NativeEndian.PutUint16(b.name[0:2], unix.AF_INET6)
	a := to.Addr().As16() // IPv4 becomes ::ffff:a.b.c.d
	copy(b.name[8:24], a[:])
	return unix.SizeofSockaddrInet6, true
}

func (b *batchWriter) opError(err error, to netip.AddrPort) error {
	var addr net.Addr
	if to.IsValid() {
		addr = net.UDPAddrFromAddrPort(to)
	}
	return &net.OpError{Op: "write", Net: "udp", Source: b.laddr, Addr: addr, Err: err}
}
