//go:build !linux

package kcp

import (
	"net"
)

// batchWriter is the batch send path; this OS has none, so the writer
// always sends one datagram per call.
type batchWriter struct{}

// newBatchWriter returns nil: no batch send on this OS.
func newBatchWriter(*net.UDPConn, bool, *offloadStats) *batchWriter { return nil }

// gso is never called: newBatchWriter returns nil.
func (*batchWriter) gso() bool { return false }

// disableGSO is never called: newBatchWriter returns nil.
func (*batchWriter) disableGSO() {}

// send is never called: newBatchWriter returns nil.
func (*batchWriter) send([]outPacket) (int, bool, error) { return 0, false, nil }
