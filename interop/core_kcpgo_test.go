package interop

import kcpgo "github.com/xtaci/kcp-go/v5"

// core is the exported surface of a bare KCP core, the same in both
// libraries apart from the PacketType argument of Input.
type core interface {
	Send(buffer []byte) int
	Recv(buffer []byte) int
	PeekSize() int
	Update()
	Check() uint32
	SetMtu(mtu int) int
	NoDelay(nodelay, interval, resend, nc int) int
	WndSize(sndwnd, rcvwnd int) int
	WaitSnd() int
	// input feeds one regular (non-FEC) datagram with ACK-no-delay on.
	input(data []byte) int
}

type coreImpl struct {
	name string
	new  func(conv uint32, output func(buf []byte, size int)) core
}

type kcpgoCore struct{ *kcpgo.KCP }

func (c kcpgoCore) input(data []byte) int { return c.Input(data, kcpgo.IKCP_PACKET_REGULAR, true) }

var kcpgoCoreImpl = coreImpl{"kcp-go", func(conv uint32, output func(buf []byte, size int)) core {
	return kcpgoCore{kcpgo.NewKCP(conv, output)}
}}
