package interop

import "unsafe"

// Neither library exports its FEC codec, so the known-answer tests and the
// benchmarks reach both by name: kcp-go v5.6.72's as its source declares it,
// kcpx's with the signatures of CONTRACT.md. Pointers to the unexported
// encoder and decoder types are carried as unsafe.Pointer.

//go:linkname kcpgoNewFECEncoder github.com/xtaci/kcp-go/v5.newFECEncoder
func kcpgoNewFECEncoder(dataShards, parityShards, offset int) unsafe.Pointer

// kcpgoFECEncode's second argument is the parity-skip bound in ms (kcp-go's
// sessions pass 500); kcp-go reads the clock itself.
//
//go:linkname kcpgoFECEncode github.com/xtaci/kcp-go/v5.(*fecEncoder).encode
func kcpgoFECEncode(e unsafe.Pointer, b []byte, rto uint32) [][]byte

//go:linkname kcpgoNewFECDecoder github.com/xtaci/kcp-go/v5.newFECDecoder
func kcpgoNewFECDecoder(dataShards, parityShards int) unsafe.Pointer

// kcpgoFECDecode returns each rebuilt shard from its size field on, in a
// buffer from kcp-go's pool.
//
//go:linkname kcpgoFECDecode github.com/xtaci/kcp-go/v5.(*fecDecoder).decode
func kcpgoFECDecode(d unsafe.Pointer, pkt []byte) [][]byte

//go:linkname kcpgoBufferPool github.com/xtaci/kcp-go/v5.defaultBufferPool
var kcpgoBufferPool unsafe.Pointer

//go:linkname kcpgoBufferPut github.com/xtaci/kcp-go/v5.(*bufferPool).Put
func kcpgoBufferPut(p unsafe.Pointer, buf []byte) error

//go:linkname kcpxNewFECEncoder github.com/kcpx/kcp.newFECEncoder
func kcpxNewFECEncoder(dataShards, parityShards, offset int) unsafe.Pointer

//go:linkname kcpxFECEncode github.com/kcpx/kcp.(*fecEncoder).encode
func kcpxFECEncode(e unsafe.Pointer, b []byte, now uint32) [][]byte

//go:linkname kcpxNewFECDecoder github.com/kcpx/kcp.newFECDecoder
func kcpxNewFECDecoder(dataShards, parityShards int) unsafe.Pointer

// kcpxFECDecode returns the KCP bytes of each rebuilt shard.
//
//go:linkname kcpxFECDecode github.com/kcpx/kcp.(*fecDecoder).decode
func kcpxFECDecode(d unsafe.Pointer, pkt []byte, now uint32) [][]byte
