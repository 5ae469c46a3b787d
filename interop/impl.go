package interop

import (
	"io"
	"net"
)

// MaxDatagram is the largest datagram the suite has either library handle:
// kcp-go v5.7 sends and receives no more (its buffers and XOR pad are 1472
// bytes), and kcpx sends no more either. v5.6.72 went to 1500.
const MaxDatagram = 1472

// Session is the part of *UDPSession both libraries share with identical
// signatures, so one test body drives either.
type Session interface {
	net.Conn
	SetNoDelay(nodelay, interval, resend, nc int)
	SetWindowSize(sndwnd, rcvwnd int)
	SetMtu(mtu int) bool
	SetStreamMode(enable bool)
	SetACKNoDelay(nodelay bool)
	SetWriteDelay(delay bool)
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
	GetConv() uint32
	GetOOBMaxSize() int
	SendOOB(data []byte) error
}

// Listener is the part of *Listener the tests use; Accept yields a Session.
type Listener interface {
	AcceptSession() (Session, error)
	Addr() net.Addr
	Close() error
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
}

// Impl binds one library: every constructor the tests need, taking a Cipher
// from the table and the pass it is keyed with.
type Impl struct {
	Name string
	// Dial is DialWithOptions.
	Dial func(raddr string, c Cipher, pass []byte, ds, ps int) (Session, error)
	// NewConn is NewConn3: a client session over a caller-owned conn.
	NewConn func(conv uint32, raddr net.Addr, c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Session, error)
	// Listen is ListenWithOptions.
	Listen func(laddr string, c Cipher, pass []byte, ds, ps int) (Listener, error)
	// ServeConn is ServeConn over a caller-owned conn.
	ServeConn func(c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Listener, error)
	// SetOOBHandler is (*UDPSession).SetOOBHandler.
	SetOOBHandler func(s Session, f func([]byte)) error
	// SetEntropy replaces the library's nonce source.
	SetEntropy func(r io.Reader)
	// NewEntropy returns the library's default nonce source.
	NewEntropy func() io.Reader
	// Snmp copies the library's DefaultSnmp.
	Snmp func() Counters
}

// Counters mirrors kcp-go's Snmp field for field (kcpx keeps the same 30
// fields in the same order), so either library's Snmp converts to it.
type Counters struct {
	BytesSent           uint64
	BytesReceived       uint64
	MaxConn             uint64
	ActiveOpens         uint64
	PassiveOpens        uint64
	CurrEstab           uint64
	InErrs              uint64
	InCsumErrors        uint64
	KCPInErrors         uint64
	InPkts              uint64
	OutPkts             uint64
	InSegs              uint64
	OutSegs             uint64
	InBytes             uint64
	OutBytes            uint64
	RetransSegs         uint64
	FastRetransSegs     uint64
	EarlyRetransSegs    uint64
	LostSegs            uint64
	RepeatSegs          uint64
	FECFullShardSet     uint64
	FECRecovered        uint64
	FECErrs             uint64
	FECParityShards     uint64
	FECShardSet         uint64
	FECShardMin         uint64
	RingBufferSndQueue  uint64
	RingBufferRcvQueue  uint64
	RingBufferSndBuffer uint64
	OOBPackets          uint64
}
