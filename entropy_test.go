package kcp

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

var entropyCtors = []struct {
	name string
	mk   func() io.Reader
}{
	{"NewEntropy", NewEntropy},
	{"NewEntropyAES", NewEntropyAES},
	{"NewEntropyChacha8", NewEntropyChacha8},
}

func TestEntropyReaders(t *testing.T) {
	for _, e := range entropyCtors {
		t.Run(e.name, func(t *testing.T) {
			r := e.mk()
			for _, n := range []int{0, 1, 15, 16, 17, 100, 4096} {
				a, b := make([]byte, n), make([]byte, n)
				if got, err := r.Read(a); got != n || err != nil {
					t.Fatalf("Read(%d bytes) = %d, %v", n, got, err)
				}
				r.Read(b)
				if n >= 8 && (bytes.Equal(a, b) || bytes.Equal(a, make([]byte, n))) {
					t.Fatalf("Read(%d bytes) repeated itself or gave zeros: %x", n, a)
				}
			}
		})
	}
}

// TestEntropyConcurrent reads 16-byte nonces from one source on many goroutines
// (run with -race): no data race, and no nonce repeats.
func TestEntropyConcurrent(t *testing.T) {
	const goroutines, reads = 8, 500
	for _, e := range entropyCtors {
		t.Run(e.name, func(t *testing.T) {
			r := e.mk()
			results := make([][][16]byte, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out := make([][16]byte, reads)
					for i := range out {
						r.Read(out[i][:])
					}
					results[g] = out
				}()
			}
			wg.Wait()
			seen := make(map[[16]byte]bool, goroutines*reads)
			for _, out := range results {
				for _, nonce := range out {
					if seen[nonce] {
						t.Fatalf("nonce %x produced twice", nonce)
					}
					seen[nonce] = true
				}
			}
		})
	}
}

func TestGeneratorsReseed(t *testing.T) {
	t.Run("AES", func(t *testing.T) {
		g := newAESGenerator()
		old := g.block
		g.uses, g.avail = entropyReseed, 0
		var buf [40]byte
		g.fill(buf[:])
		if g.block == old || g.uses != 3 {
			t.Fatalf("after %d blocks the AES generator kept its key (uses %d)", entropyReseed, g.uses)
		}
	})
	t.Run("AESCounterWraps", func(t *testing.T) {
		g := newAESGenerator()
		for i := range g.ctr {
			g.ctr[i] = 0xff
		}
		g.avail = 0
		var a, b [16]byte
		g.fill(a[:])
		if g.ctr != [16]byte{} {
			t.Fatalf("counter did not wrap to zero: %x", g.ctr)
		}
		g.fill(b[:])
		if a == b {
			t.Fatal("consecutive counter blocks gave the same output")
		}
	})
	t.Run("ChaCha8", func(t *testing.T) {
		g := newChaCha8Generator()
		g.uses = entropyReseed
		var buf [16]byte
		g.fill(buf[:])
		if g.uses != 1 {
			t.Fatalf("after %d reads the ChaCha8 generator was not reseeded (uses %d)", entropyReseed, g.uses)
		}
	})
}

// failingReader writes a fixed byte and then fails, as a broken custom source.
type failingReader struct{}

func (failingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xaa
	}
	return len(p) / 2, errors.New("entropy source broken")
}

func TestSetEntropy(t *testing.T) {
	t.Cleanup(func() { SetEntropy(nil) })
	bc, err := NewAESBlockCrypt(katKey(16))
	if err != nil {
		t.Fatal(err)
	}
	c := newPacketCrypter(bc)
	nonce := func() []byte {
		d := sealCopy(c, katInput(30))
		if _, err := c.open(d); err != nil {
			t.Fatal(err)
		}
		return d[:cfbNonceSize]
	}

	SetEntropy(fixedReader{katInput(16)})
	if got := nonce(); !bytes.Equal(got, katInput(16)) {
		t.Fatalf("nonce %x, want the installed reader's %x", got, katInput(16))
	}

	SetEntropy(failingReader{})
	a, b := nonce(), nonce()
	if bytes.Equal(a, b) || bytes.Equal(a, bytes.Repeat([]byte{0xaa}, 16)) {
		t.Fatalf("a failing reader's bytes were used as nonces: %x %x", a, b)
	}

	SetEntropy(nil)
	if a, b := nonce(), nonce(); bytes.Equal(a, b) || bytes.Equal(a, katInput(16)) {
		t.Fatalf("SetEntropy(nil) did not restore the built-in source: %x %x", a, b)
	}
}

// TestSetEntropyWhileSealing swaps the global source while sessions-like
// goroutines seal and open (run with -race).
func TestSetEntropyWhileSealing(t *testing.T) {
	t.Cleanup(func() { SetEntropy(nil) })
	bc, err := NewAESGCMCrypt(katKey(16))
	if err != nil {
		t.Fatal(err)
	}
	c := newPacketCrypter(bc)
	stop := make(chan struct{})
	swapped := make(chan struct{})
	go func() {
		defer close(swapped)
		sources := []io.Reader{NewEntropyAES(), NewEntropyChacha8(), nil, fixedReader{katInput(12)}}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				SetEntropy(sources[i%len(sources)])
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				payload := []byte{byte(g), byte(i), 1, 2, 3}
				d := sealCopy(c, payload)
				if got, err := c.open(d); err != nil || !bytes.Equal(got, payload) {
					t.Errorf("goroutine %d: round trip failed: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-swapped
}
