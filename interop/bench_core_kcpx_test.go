package interop

import (
	"testing"
	_ "unsafe" // for go:linkname

	kcpx "github.com/kcpx/kcp"
)

// kcpxFlush is kcpx's internal flush (CONTRACT.md: flush(current, ft)),
// reached the same way as kcp-go's so both benchmarks time the same call.
//
//go:linkname kcpxFlush github.com/kcpx/kcp.(*KCP).flush
func kcpxFlush(k *kcpx.KCP, current uint32, ft kcpx.FlushType) uint32

func benchFlushKCPX(b *testing.B) {
	b.Run("kcpx", func(b *testing.B) {
		c := newBenchCore(kcpxCoreImpl)
		k := c.(kcpxCore).KCP
		now := loadFlight(b, c, func(now uint32) { kcpxFlush(k, now, kcpx.IKCP_FLUSH_FULL) })
		b.ReportAllocs()
		for b.Loop() {
			kcpxFlush(k, now, kcpx.IKCP_FLUSH_FULL)
		}
	})
}

func benchInputKCPX(b *testing.B) {
	b.Run("kcpx", func(b *testing.B) { benchInput(b, kcpxCoreImpl) })
}
