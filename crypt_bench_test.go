package kcp

import (
	"hash/crc32"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
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

// benchAEAD is a named BlockCrypt for the AEAD benchmarks.
type benchAEAD struct {
	name string
	bc   BlockCrypt
}

// benchAEADs gives the two AEADs the benchmarks set side by side:
// AES-256-GCM (NewAESGCMCrypt) and ChaCha20-Poly1305 (NewAEADCrypt).
func benchAEADs(b *testing.B) []benchAEAD {
	gcm, err := NewAESGCMCrypt(testKey)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := chacha20poly1305.New(testKey)
	if err != nil {
		b.Fatal(err)
	}
	return []benchAEAD{{"GCM", gcm}, {"ChaCha20Poly1305", NewAEADCrypt(cc)}}
}

// BenchmarkAEADCeiling seals then opens 1,400-byte datagrams (12-byte nonce,
// 1,372 bytes of payload, 16-byte tag for GCM) three ways, for AES-256-GCM
// and ChaCha20-Poly1305: "raw" calls crypto/cipher's Seal and Open directly
// with a fixed nonce (the ceiling: the AEAD alone), "packet" goes through
// packetCrypter.seal and open one datagram at a time (nonce drawn, framing
// checked), and "batch" seals 64 at a time through sealBatch, as the sender
// does, and opens them one by one, as the reader does. Bytes count one
// direction, so MB/s compares with a sink.
func BenchmarkAEADCeiling(b *testing.B) {
	const datagram, batch = 1400, 64
	for _, tc := range benchAEADs(b) {
		c := newPacketCrypter(tc.bc)
		n := datagram - c.overhead()
		payload := katInput(n)
		bufs := make([][]byte, batch)
		for i := range bufs {
			bufs[i] = make([]byte, mtuLimit)
		}
		b.Run(tc.name+"/raw", func(b *testing.B) {
			a := c.aead
			buf := bufs[0]
			nonce := make([]byte, c.hdr)
			b.ReportAllocs()
			b.SetBytes(datagram)
			for b.Loop() {
				copy(buf[c.hdr:], payload)
				d := a.Seal(buf[:c.hdr], nonce, buf[c.hdr:c.hdr+n], nil)
				if _, err := a.Open(d[c.hdr:c.hdr], nonce, d[c.hdr:], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/packet", func(b *testing.B) {
			buf := bufs[0]
			b.ReportAllocs()
			b.SetBytes(datagram)
			for b.Loop() {
				copy(buf[c.hdr:], payload)
				d := c.seal(buf[:c.hdr+n])
				if _, err := c.open(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/batch", func(b *testing.B) {
			pkts := make([]outPacket, batch)
			b.ReportAllocs()
			b.SetBytes(datagram * batch)
			for b.Loop() {
				for i := range pkts {
					copy(bufs[i][c.hdr:], payload)
					pkts[i].b = bufs[i][:c.hdr+n]
				}
				c.sealBatch(pkts)
				for i := range pkts {
					if _, err := c.open(pkts[i].b); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
