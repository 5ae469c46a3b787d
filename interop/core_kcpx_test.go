package interop

import kcpx "github.com/kcpx/kcp"

type kcpxCore struct{ *kcpx.KCP }

func (c kcpxCore) input(data []byte) int { return c.Input(data, kcpx.IKCP_PACKET_REGULAR, true) }

var kcpxCoreImpl = coreImpl{"kcpx", func(conv uint32, output func(buf []byte, size int)) core {
	return kcpxCore{kcpx.NewKCP(conv, output)}
}}
