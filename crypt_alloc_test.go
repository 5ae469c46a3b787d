//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation counts
// are only meaningful without it.

package kcp

import "testing"

func TestPacketPathAllocatesNothing(t *testing.T) {
	for _, tc := range allCiphers(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := newPacketCrypter(tc.block)
			p := getBuffer()
			defer putBuffer(p)
			garbage := katInput(mtuLimit)
			for _, n := range []int{0, 1, 5, 11, 12, 13, 300, mtuLimit - c.overhead()} {
				payload := katInput(n)
				own := aeadOwnAllocs(c, payload, garbage[:n])
				allocs := testing.AllocsPerRun(100, func() {
					copy((*p)[c.headerSize():], payload)
					d := c.seal((*p)[:c.headerSize()+n])
					if _, err := c.open(d); err != nil {
						t.Fatal(err)
					}
					c.open(garbage[:n]) // rejected input, any length
				})
				if allocs != own {
					t.Fatalf("payload %d bytes: %v allocations per seal+open, the cipher's own Seal+Open %v", n, allocs, own)
				}
			}
			if tc.block == nil {
				return
			}
			// Every length class of the CFB loops, including the short ones that
			// borrow a pooled scratch block.
			buf := make([]byte, 64)
			for n := 0; n <= len(buf); n++ {
				allocs := testing.AllocsPerRun(20, func() {
					tc.block.Encrypt(buf[:n], buf[:n])
					tc.block.Decrypt(buf[:n], buf[:n])
				})
				if allocs != 0 {
					t.Fatalf("%d bytes: %v allocations per Encrypt+Decrypt", n, allocs)
				}
			}
		})
	}
}

// aeadOwnAllocs is what c's AEAD itself costs in allocations for the calls
// the packet path makes of it: a Seal and an Open of payload, and an Open of
// garbage when it is long enough to reach the cipher. 0 for every AEAD this
// package builds, but x/crypto's XChaCha20-Poly1305 allocates when built
// with -tags purego, and the packet path must add nothing on top of the
// cipher it is given. 0 when c has no AEAD.
func aeadOwnAllocs(c *packetCrypter, payload, garbage []byte) float64 {
	if c.aead == nil {
		return 0
	}
	aead := c.aead
	nonce := make([]byte, aead.NonceSize())
	buf := make([]byte, 0, len(payload)+aead.Overhead())
	return testing.AllocsPerRun(100, func() {
		sealed := aead.Seal(buf[:0], nonce, payload, nil)
		if _, err := aead.Open(sealed[:0], nonce, sealed, nil); err != nil {
			panic(err)
		}
		if len(garbage)-c.hdr >= c.tag {
			aead.Open(buf[:0], nonce, garbage[c.hdr:], nil)
		}
	})
}

func TestBufferPoolAllocatesNothing(t *testing.T) {
	putBuffer(getBuffer()) // warm the pool
	if allocs := testing.AllocsPerRun(1000, func() { putBuffer(getBuffer()) }); allocs != 0 {
		t.Fatalf("%v allocations per getBuffer+putBuffer", allocs)
	}
	var nonce [16]byte
	if allocs := testing.AllocsPerRun(1000, func() { fillNonce(nonce[:]) }); allocs != 0 {
		t.Fatalf("%v allocations per nonce", allocs)
	}
}

// TestSealBatchAllocatesNothing: sealing a sender's batch (the multi-chain
// AES-CFB path included) allocates nothing.
func TestSealBatchAllocatesNothing(t *testing.T) {
	for _, tc := range allCiphers(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := newPacketCrypter(tc.block)
			pkts := make([]outPacket, 64)
			bufs := make([][]byte, len(pkts))
			for i := range bufs {
				bufs[i] = make([]byte, mtuLimit)
			}
			allocs := testing.AllocsPerRun(50, func() {
				for i := range pkts {
					pkts[i].b = bufs[i][:c.headerSize()+(i*97)%(mtuLimit-c.overhead())]
				}
				c.sealBatch(pkts)
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per batch of %d", allocs, len(pkts))
			}
		})
	}
}
