package kcp

import (
	"hash/crc32"
	"testing"
)

// BenchmarkCipher measures Encrypt then Decrypt of a 1500-byte datagram into
// separate buffers, counting both directions (3000 bytes per op): the method of
// kcp-go's own cipher benchmarks, so the figures compare side by side.
func BenchmarkCipher(b *testing.B) {
	for _, tc := range allCiphers(b) {
		if _, isAEAD := tc.block.(aeadPacketCipher); isAEAD || tc.block == nil {
			continue // AEADs are measured by BenchmarkSealOpen
		}
		b.Run(tc.name, func(b *testing.B) {
			data := katInput(mtuLimit)
			enc := make([]byte, mtuLimit)
			dec := make([]byte, mtuLimit)
			b.ReportAllocs()
			b.SetBytes(2 * mtuLimit)
			for b.Loop() {
				tc.block.Encrypt(enc, data)
				tc.block.Decrypt(dec, enc)
			}
		})
	}
}

// BenchmarkSealOpen seals and opens one full 1500-byte datagram in place, as
// the packet path does (nonce, CRC32 or AEAD tag included); bytes count both
// directions.
func BenchmarkSealOpen(b *testing.B) {
	for _, tc := range allCiphers(b) {
		b.Run(tc.name, func(b *testing.B) {
			c := newPacketCrypter(tc.block)
			p := getBuffer()
			defer putBuffer(p)
			n := mtuLimit - c.overhead()
			payload := katInput(n)
			b.ReportAllocs()
			b.SetBytes(2 * mtuLimit)
			for b.Loop() {
				copy((*p)[c.headerSize():], payload)
				d := c.seal((*p)[:c.headerSize()+n])
				if _, err := c.open(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCRC32(b *testing.B) {
	data := katInput(mtuLimit)
	b.ReportAllocs()
	b.SetBytes(mtuLimit)
	for b.Loop() {
		crc32.ChecksumIEEE(data)
	}
}

func BenchmarkEntropy(b *testing.B) {
	var nonce [16]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(nonce)))
	for b.Loop() {
		fillNonce(nonce[:])
	}
}

func BenchmarkBufferPool(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			putBuffer(getBuffer())
		}
	})
}
