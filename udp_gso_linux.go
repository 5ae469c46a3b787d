//go:build linux

package kcp

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP segmentation offload (GSO, UDP_SEGMENT, Linux 4.18) and receive
// coalescing (GRO, UDP_GRO, Linux 5.0).
//
// With GSO one sendmmsg message carries a run of datagrams for one peer as a
// single "super-datagram" plus a UDP_SEGMENT control message naming the
// segment size; the kernel (or the NIC) cuts it into datagrams of that size,
// the last one possibly shorter. With GRO enabled on a socket the kernel hands
// over such runs still joined (from loopback as sent, from a NIC as its GRO
// engine merged them), with a UDP_GRO control message giving the segment
// size, and the reader cuts them apart again. Either side works without the
// other: the kernel segments for a receiver without GRO, and a GRO reader
// gets plain datagrams from any other sender.

const (
	// gsoMaxSegments is UDP_MAX_SEGMENTS as of Linux 4.18: the most datagrams
	// one super-datagram may carry (later kernels allow more).
	gsoMaxSegments = 64

	// gsoMaxBytes bounds a super-datagram's payload so that it fits one IP
	// packet of either family: 65535 - 40 (IPv6 header) - 8 (UDP header).
	gsoMaxBytes = 65535 - 40 - 8

	// gsoMinLimit is the smallest segment size the writer keeps GSO for
	// after the kernel refused a larger one with EINVAL (a path MTU below
	// the segment size): the IPv6 minimum MTU minus its IP and UDP headers.
	gsoMinLimit = 1280 - 40 - 8

	// groSlotSize is the receive buffer per recvmmsg message with GRO on:
	// a coalesced run can fill a whole IP packet.
	groSlotSize = 1 << 16

	// groSlots is the number of messages one recvmmsg takes with GRO on.
	// 16 slots of 64 KiB reserve 1 MiB of address space per reader; the
	// pages are touched only as far as datagrams fill them, so a reader of
	// small or rare datagrams stays small in memory. Against a sender
	// without GSO on loopback a call takes 16 datagrams instead of 64, which
	// costs little: the per-datagram work dominates.
	groSlots = 16

	// groBusySlots is the number of messages a call takes while GRO runs
	// arrive: four runs are up to 180 datagrams of 1400 bytes, enough to
	// make the call's cost small beside their input, and few enough that a
	// datagram arriving meanwhile waits for no more than those.
	groBusySlots = 4
)

// cmsgSegSpace is the room for one UDP_SEGMENT control message (a uint16).
var cmsgSegSpace = unix.CmsgSpace(2)

// cmsgGROSpace is the room for control messages on receive: one UDP_GRO (an
// int) with room to spare for options a caller may have enabled.
var cmsgGROSpace = 2 * unix.CmsgSpace(4)

// probeGSO reports whether the socket knows UDP_SEGMENT. A kernel without it
// answers ENOPROTOOPT; one that ignored the control message instead would
// send a whole run as one oversized datagram, so the probe must pass first.
func probeGSO(rc syscall.RawConn) bool {
	ok := false
	err := rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return err == nil && ok
}

// setGRO turns UDP_GRO on or off for the socket.
func setGRO(rc syscall.RawConn, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	ok := false
	err := rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, v) == nil
	})
	return err == nil && ok
}

// putSegmentCmsg writes a UDP_SEGMENT control message for segments of size
// bytes into b (len(b) >= cmsgSegSpace).
func putSegmentCmsg(b []byte, size int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
}

// groSegmentSize returns the segment size of a UDP_GRO control message in
// ctrl (the bytes the kernel filled), or 0 when there is none.
func groSegmentSize(ctrl []byte) int {
	hdrLen := unix.CmsgLen(0)
	for len(ctrl) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(ctrl) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= hdrLen+4 {
			return int(int32(binary.NativeEndian.Uint32(ctrl[hdrLen:])))
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next >= len(ctrl) {
			return 0
		}
		ctrl = ctrl[next:]
	}
	return 0
}

// gsoRefused reports a send error that the kernel gives for a UDP_SEGMENT
// message it will not carry: EIO (no checksum offload on the device, or an
// IPsec route), EINVAL (segment larger than the path MTU, too many segments,
// checksums turned off), EOPNOTSUPP and ENOPROTOOPT (no GSO support at all).
func gsoRefused(errno syscall.Errno) bool {
	switch errno {
	case unix.EIO, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOPROTOOPT:
		return true
	}
	return false
}
