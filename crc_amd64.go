//go:build amd64 && !purego

package kcp

import (
	"hash/crc32"

	"golang.org/x/sys/cpu"
)

// useCRCAVX512 selects the AVX-512 VPCLMULQDQ fold (crc_amd64.s) for long
// inputs: sixteen 128-bit folds per step against hash/crc32's four.
var useCRCAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ

// crcFoldMin is the shortest input given to the AVX-512 fold, which starts
// with four 64-byte registers.
const crcFoldMin = 256

//go:noescape
func crc32FoldAVX512(state uint32, p *byte, n int, k *[11][2]uint64) uint32

// crcIEEE is crc32.ChecksumIEEE(p): from 256 bytes on AVX-512 by the
// assembly, else by hash/crc32.
func crcIEEE(p []byte) uint32 {
	if !useCRCAVX512 || len(p) < crcFoldMin {
		return crc32.ChecksumIEEE(p)
	}
	return ^crc32FoldAVX512(0xffffffff, &p[0], len(p), &crcFoldK)
}
