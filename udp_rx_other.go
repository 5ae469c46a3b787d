//go:build !linux

package kcp

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// batchReader is the batch receive path; this OS has none, so the reader
// always reads one datagram per call.
type batchReader struct{}

// newBatchReader returns nil: no batch receive on this OS.
func newBatchReader(*net.UDPConn, *offloadStats, bool) *batchReader { return nil }

// busy is never called: newBatchReader returns nil.
func (*batchReader) busy() bool { return false }

// groOn is never called: newBatchReader returns nil.
func (*batchReader) groOn() bool { return false }

// wantsGrow is never called: newBatchReader returns nil.
func (*batchReader) wantsGrow() bool { return false }

// grow is never called: newBatchReader returns nil.
func (*batchReader) grow() bool { return false }

// disableGRO is never called: newBatchReader returns nil.
func (*batchReader) disableGRO() {}

// widen is never called: newBatchReader returns nil.
func (*batchReader) widen(int) {}

// stopGRO is never called: newBatchReader returns nil.
func (*batchReader) stopGRO() {}

// receive is never called: newBatchReader returns nil.
func (*batchReader) receive(func(data []byte, ap netip.AddrPort, addr net.Addr), *atomic.Uint64) error {
	return nil
}

// socketDrops reports nothing on this OS: its sockets' drop counts are not
// read.
func socketDrops(*net.UDPConn) (uint64, bool) { return 0, false }
