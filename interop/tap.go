package interop

import (
	"net"
	"sync"
)

// Hook sees one datagram crossing a TapConn; returning false drops it.
// p is only valid during the call.
type Hook func(p []byte, addr net.Addr) bool

// TapConn wraps a net.PacketConn and lets a test see, record or drop each
// datagram written or read. It hides the wrapped conn's batch-I/O methods, so
// both libraries use plain ReadFrom/WriteTo on it. Safe for concurrent use.
type TapConn struct {
	net.PacketConn
	mu      sync.Mutex
	onWrite Hook
	onRead  Hook
}

// NewTapConn wraps c with no hooks.
func NewTapConn(c net.PacketConn) *TapConn { return &TapConn{PacketConn: c} }

// OnWrite sets the hook called for every datagram written (nil removes it).
func (t *TapConn) OnWrite(h Hook) {
	t.mu.Lock()
	t.onWrite = h
	t.mu.Unlock()
}

// OnRead sets the hook called for every datagram read (nil removes it).
func (t *TapConn) OnRead(h Hook) {
	t.mu.Lock()
	t.onRead = h
	t.mu.Unlock()
}

// WriteTo passes p to the write hook, then sends it unless the hook dropped
// it (a dropped datagram still reports success, as a lossy path would).
func (t *TapConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	t.mu.Lock()
	h := t.onWrite
	t.mu.Unlock()
	if h != nil && !h(p, addr) {
		return len(p), nil
	}
	return t.PacketConn.WriteTo(p, addr)
}

// ReadFrom returns the next datagram the read hook lets through.
func (t *TapConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := t.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		t.mu.Lock()
		h := t.onRead
		t.mu.Unlock()
		if h == nil || h(p[:n], addr) {
			return n, addr, nil
		}
	}
}

// SetReadBuffer forwards to the wrapped conn when it has the method.
func (t *TapConn) SetReadBuffer(bytes int) error {
	if c, ok := t.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return c.SetReadBuffer(bytes)
	}
	return nil
}

// SetWriteBuffer forwards to the wrapped conn when it has the method.
func (t *TapConn) SetWriteBuffer(bytes int) error {
	if c, ok := t.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return c.SetWriteBuffer(bytes)
	}
	return nil
}
