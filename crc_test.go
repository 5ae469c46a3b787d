package kcp

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCFoldConstants: the computed fold constants for 512 and 128 bits are
// the ones hash/crc32's amd64 code (and Intel's paper) use.
func TestCRCFoldConstants(t *testing.T) {
	if got, want := crcFoldPair(512), [2]uint64{0x154442bd4, 0x1c6e41596}; got != want {
		t.Errorf("512-bit fold %#x, want %#x", got, want)
	}
	if got, want := crcFoldPair(128), [2]uint64{0x1751997d0, 0x0ccaa009e}; got != want {
		t.Errorf("128-bit fold %#x, want %#x", got, want)
	}
	if got, want := crcFoldK[9], [2]uint64{0x0ccaa009e, 0x163cd6124}; got != want {
		t.Errorf("x^96, x^64 folds %#x, want %#x", got, want)
	}
	if got, want := crcFoldK[10], [2]uint64{0x1db710641, 0x1f7011641}; got != want {
		t.Errorf("polynomial and mu %#x, want %#x", got, want)
	}
}

// TestCRCIEEE: crcIEEE is crc32.ChecksumIEEE for every length 0..3000 of
// random bytes, and for all-zero and all-ones inputs.
func TestCRCIEEE(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 3))
	buf := make([]byte, 3000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for n := 0; n <= len(buf); n++ {
		for _, off := range []int{0, 1, 7} {
			if off+n > len(buf) {
				continue
			}
			p := buf[off : off+n]
			if got, want := crcIEEE(p), crc32.ChecksumIEEE(p); got != want {
				t.Fatalf("%d bytes at %d: %#08x, want %#08x", n, off, got, want)
			}
		}
	}
	for _, v := range []byte{0, 0xff} {
		p := make([]byte, 1500)
		for i := range p {
			p[i] = v
		}
		if got, want := crcIEEE(p), crc32.ChecksumIEEE(p); got != want {
			t.Fatalf("1500 x %#02x: %#08x, want %#08x", v, got, want)
		}
	}
}

// BenchmarkCRCIEEE: hash/crc32 against crcIEEE (AVX-512 where present) over
// a full datagram's payload.
func BenchmarkCRCIEEE(b *testing.B) {
	p := katInput(mtuLimit - cryptHeader)
	b.Run("hash-crc32", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crc32.ChecksumIEEE(p)
		}
	})
	b.Run("crcIEEE", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crcIEEE(p)
		}
	})
}
