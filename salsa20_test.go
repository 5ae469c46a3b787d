package kcp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/crypto/salsa20"
	"golang.org/x/crypto/salsa20/salsa"
)

// salsaWant is x/crypto's keystream XOR at block counter ctr.
func salsaWant(src []byte, nonce *[8]byte, key *[32]byte, ctr uint64) []byte {
	var block [16]byte
	copy(block[:8], nonce[:])
	for i := range 8 {
		block[8+i] = byte(ctr >> (8 * i))
	}
	out := make([]byte, len(src))
	salsa.XORKeyStream(out, src, &block, key)
	return out
}

func salsaLengths() []int {
	var ns []int
	for n := 0; n <= 2048; n++ {
		ns = append(ns, n)
	}
	return append(ns, 4096, 65536)
}

// TestSalsa20MatchesXCrypto compares both entry points with x/crypto for every
// length up to 2048 (and two larger ones), in place and out of place, at every
// offset 0..31 into a larger buffer for dst and src independently.
func TestSalsa20MatchesXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var key [32]byte
	var nonce [8]byte
	big := make([]byte, 65536+64)
	dstBuf := make([]byte, 65536+64)
	for _, n := range salsaLengths() {
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		for i := range nonce {
			nonce[i] = byte(rng.Uint32())
		}
		for i := range big[:n+32] {
			big[i] = byte(rng.Uint32())
		}
		so, do := rng.IntN(32), rng.IntN(32)
		if n <= 600 || n%97 == 0 {
			so, do = n%32, (n/32+1)%32 // walk every offset pair class
		}
		src := big[so : so+n]
		want := make([]byte, n)
		salsa20.XORKeyStream(want, src, nonce[:], &key)
		if n > 0 {
			if ref := salsaWant(src, &nonce, &key, 0); !bytes.Equal(ref, want) {
				t.Fatalf("n=%d: reference helper disagrees with salsa20.XORKeyStream", n)
			}
		}

		// Out of place, both entry points.
		dst := dstBuf[do : do+n]
		fill(dst, 0xAA)
		salsa20XOR(dst, src, &nonce, &key)
		if !bytes.Equal(dst, want) {
			t.Fatalf("salsa20XOR n=%d src+%d dst+%d: mismatch at %d", n, so, do, firstDiff(dst, want))
		}
		fill(dst, 0x55)
		salsa20XORCounter(dst, src, &nonce, &key, 0)
		if !bytes.Equal(dst, want) {
			t.Fatalf("salsa20XORCounter n=%d src+%d dst+%d: mismatch at %d", n, so, do, firstDiff(dst, want))
		}
		// In place, both entry points.
		orig := append([]byte(nil), src...)
		salsa20XOR(src, src, &nonce, &key)
		if !bytes.Equal(src, want) {
			t.Fatalf("in-place salsa20XOR n=%d src+%d: mismatch at %d", n, so, firstDiff(src, want))
		}
		copy(src, orig)
		salsa20XORCounter(src, src, &nonce, &key, 0)
		if !bytes.Equal(src, want) {
			t.Fatalf("in-place salsa20XORCounter n=%d src+%d: mismatch at %d", n, so, firstDiff(src, want))
		}
		clear(dstBuf)
	}
}

// TestSalsa20NoOverrun checks that nothing past len(src) is written, for every
// tail length, by surrounding dst with guard bytes.
func TestSalsa20NoOverrun(t *testing.T) {
	var key [32]byte
	var nonce [8]byte
	key[0], nonce[0] = 1, 2
	buf := make([]byte, 2048+128)
	src := make([]byte, 2048)
	for n := 0; n <= 2048; n++ {
		fill(buf, 0xC3)
		dst := buf[64 : 64+n : 64+n]
		salsa20XORCounter(dst, src[:n], &nonce, &key, 0)
		for i, b := range buf {
			if (i < 64 || i >= 64+n) && b != 0xC3 {
				t.Fatalf("n=%d: byte %d outside dst changed", n, i-64)
			}
		}
	}
}

// TestSalsa20CounterCarry starts the block counter just below 2^32 (and just
// below 2^64, where it wraps) so that the eight lanes of one batch, and the
// batches after it, cross from word 8 into word 9.
func TestSalsa20CounterCarry(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var key [32]byte
	var nonce [8]byte
	src := make([]byte, 3000)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	dst := make([]byte, len(src))
	for _, base := range []uint64{1<<32 - 1, 1<<32 - 2, 1<<32 - 5, 1<<32 - 8, 1<<32 - 9, 1<<32 - 20, 1 << 32, 5<<32 - 3, 1<<64 - 1, 1<<64 - 6} {
		for _, n := range []int{1, 63, 64, 65, 200, 511, 512, 513, 1000, 1500, 3000} {
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			for i := range nonce {
				nonce[i] = byte(rng.Uint32())
			}
			want := salsaWant(src[:n], &nonce, &key, base)
			salsa20XORCounter(dst[:n], src[:n], &nonce, &key, base)
			if !bytes.Equal(dst[:n], want) {
				t.Fatalf("counter %#x n=%d: mismatch at %d", base, n, firstDiff(dst[:n], want))
			}
		}
	}
}

func TestSalsa20Allocs(t *testing.T) {
	var key [32]byte
	var nonce [8]byte
	buf := make([]byte, 1500)
	if a := testing.AllocsPerRun(100, func() {
		salsa20XOR(buf, buf, &nonce, &key)
		salsa20XORCounter(buf[:100], buf[:100], &nonce, &key, 7)
	}); a != 0 {
		t.Fatalf("%v allocations per run", a)
	}
}

func FuzzSalsa20(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 8), uint64(0), []byte("hello"), uint8(0))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xee}, 8), uint64(1<<32-3), make([]byte, 1500), uint8(7))
	f.Add([]byte("k"), []byte("n"), uint64(1<<64-2), make([]byte, 513), uint8(31))
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("nonce..."), uint64(0), make([]byte, 1400), uint8(3))
	f.Fuzz(func(t *testing.T, k, nb []byte, ctr uint64, data []byte, off uint8) {
		var key [32]byte
		var nonce [8]byte
		copy(key[:], k)
		copy(nonce[:], nb)
		if len(data) == 0 {
			return
		}
		want := salsaWant(data, &nonce, &key, ctr)

		// Out of place at an odd offset.
		o := int(off % 32)
		buf := make([]byte, o+len(data))
		salsa20XORCounter(buf[o:], data, &nonce, &key, ctr)
		if !bytes.Equal(buf[o:], want) {
			t.Fatalf("counter %#x n=%d: mismatch at %d", ctr, len(data), firstDiff(buf[o:], want))
		}
		// In place.
		in := append([]byte(nil), data...)
		salsa20XORCounter(in, in, &nonce, &key, ctr)
		if !bytes.Equal(in, want) {
			t.Fatalf("in place, counter %#x n=%d: mismatch", ctr, len(data))
		}
		// The counter-0 entry point against the public x/crypto API.
		want0 := make([]byte, len(data))
		salsa20.XORKeyStream(want0, data, nonce[:], &key)
		salsa20XOR(buf[o:], data, &nonce, &key)
		if !bytes.Equal(buf[o:], want0) {
			t.Fatalf("salsa20XOR n=%d: mismatch", len(data))
		}
	})
}

// BenchmarkSalsa20 runs x/crypto and this package's keystream XOR on the same
// input, side by side per size.
func BenchmarkSalsa20(b *testing.B) {
	var key [32]byte
	var nonce [8]byte
	for i := range key {
		key[i] = byte(i)
	}
	for _, n := range []int{64, 512, 1400, 1500, 16384} {
		src := make([]byte, n)
		dst := make([]byte, n)
		b.Run(fmt.Sprintf("%d/xcrypto", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				salsa20.XORKeyStream(dst, src, nonce[:], &key)
			}
		})
		b.Run(fmt.Sprintf("%d/kcp", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				salsa20XOR(dst, src, &nonce, &key)
			}
		})
	}
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSalsa20AsmUpToDate: salsa20_amd64.s is what its generator writes now,
// so an edit of internal/asmgen/salsa20.go cannot ship without the assembly.
func TestSalsa20AsmUpToDate(t *testing.T) {
	gotool := "go"
	if root := runtime.GOROOT(); root != "" {
		gotool = filepath.Join(root, "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "salsa20_amd64.s")
	cmd := exec.Command(gotool, "run", "internal/asmgen/salsa20.go", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("salsa20_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("salsa20_amd64.s differs from the generator's output: run go generate")
	}
}
