//go:build !amd64 || purego

package kcp

import (
	"golang.org/x/crypto/salsa20"
	"golang.org/x/crypto/salsa20/salsa"
)

// salsa20XOR XORs src into dst with the Salsa20/20 keystream for key and the
// 8-byte nonce, block counter starting at 0. Without AVX2 assembly this is
// x/crypto's salsa20.XORKeyStream.
func salsa20XOR(dst, src []byte, nonce *[8]byte, key *[32]byte) {
	salsa20.XORKeyStream(dst, src, nonce[:], key)
}

// salsa20XORCounter is salsa20XOR starting at block counter ctr.
func salsa20XORCounter(dst, src []byte, nonce *[8]byte, key *[32]byte, ctr uint64) {
	dst = dst[:len(src)]
	var block [16]byte
	copy(block[:8], nonce[:])
	for i := range 8 {
		block[8+i] = byte(ctr >> (8 * i))
	}
	salsa.XORKeyStream(dst, src, &block, key)
}
