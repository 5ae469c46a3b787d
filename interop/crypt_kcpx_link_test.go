package interop

import (
	"unsafe"

	kcpx "github.com/kcpx/kcp"
)

// kcpx's packet framing (CONTRACT.md: newPacketCrypter, seal, open) is
// internal; the known-answer tests reach it by name so that whole sealed
// datagrams can be compared without sessions. The *packetCrypter is carried
// as an unsafe.Pointer, which has the same shape.
//
//go:linkname kcpxNewPacketCrypter github.com/kcpx/kcp.newPacketCrypter
func kcpxNewPacketCrypter(block kcpx.BlockCrypt) unsafe.Pointer

//go:linkname kcpxSeal github.com/kcpx/kcp.(*packetCrypter).seal
func kcpxSeal(c unsafe.Pointer, pkt []byte) []byte

//go:linkname kcpxOpen github.com/kcpx/kcp.(*packetCrypter).open
func kcpxOpen(c unsafe.Pointer, pkt []byte) ([]byte, error)

//go:linkname kcpxHeaderSize github.com/kcpx/kcp.(*packetCrypter).headerSize
func kcpxHeaderSize(c unsafe.Pointer) int

//go:linkname kcpxOverhead github.com/kcpx/kcp.(*packetCrypter).overhead
func kcpxOverhead(c unsafe.Pointer) int
