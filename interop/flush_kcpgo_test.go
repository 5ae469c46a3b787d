package interop

import (
	_ "unsafe" // for go:linkname

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// kcp-go exports no way to run one flush: Update flushes at most once per
// interval. BenchmarkFlush therefore links to the unexported method, as
// kcp-go's own BenchmarkFlush calls it from inside the package.
//
//go:linkname kcpgoFlush github.com/xtaci/kcp-go/v5.(*KCP).flush
func kcpgoFlush(k *kcpgo.KCP, ft kcpgo.FlushType) uint32
