package interop

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	kcpx "github.com/kcpx/kcp"
	kcpgo "github.com/xtaci/kcp-go/v5"
)

const benchDatagram = MaxDatagram

// BenchmarkCipher is Encrypt then Decrypt of one MaxDatagram-byte datagram in
// place, for every in-place cipher, kcp-go beside kcpx (kcp-go's per-cipher
// benchmarks measure the same pair).
func BenchmarkCipher(b *testing.B) {
	for _, c := range Ciphers {
		if c.IsNil() || c.AEAD {
			continue
		}
		g, err := c.KCPGo(testPass)
		if err != nil {
			b.Fatal(err)
		}
		x, err := c.KCPX(testPass)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Name+"/kcpgo", func(b *testing.B) { benchBlock(b, g.Encrypt, g.Decrypt) })
		b.Run(c.Name+"/kcpx", func(b *testing.B) { benchBlock(b, x.Encrypt, x.Decrypt) })
	}
}

func benchBlock(b *testing.B, enc, dec func(dst, src []byte)) {
	buf := make([]byte, benchDatagram)
	b.SetBytes(benchDatagram)
	b.ReportAllocs()
	for b.Loop() {
		enc(buf, buf)
		dec(buf, buf)
	}
}

// BenchmarkSealOpen seals and opens one whole MaxDatagram-byte datagram (nonce,
// CRC32 and cipher, or AEAD seal and open) for every cipher: kcp-go's framing
// built from its exported pieces and its default entropy source, beside
// kcpx's framing.
func BenchmarkSealOpen(b *testing.B) {
	for _, c := range Ciphers {
		if c.IsNil() {
			continue
		}
		g, err := c.KCPGo(testPass)
		if err != nil {
			b.Fatal(err)
		}
		x, err := c.KCPX(testPass)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Name+"/kcpgo", func(b *testing.B) { benchKCPGoSealOpen(b, g) })
		b.Run(c.Name+"/kcpx", func(b *testing.B) { benchKCPXSealOpen(b, x) })
	}
}

func benchKCPGoSealOpen(b *testing.B, block kcpgo.BlockCrypt) {
	nonces := kcpgo.NewEntropy()
	buf := make([]byte, benchDatagram, benchDatagram+16)
	b.SetBytes(benchDatagram)
	b.ReportAllocs()
	if a, ok := block.(kcpgoAEAD); ok {
		ns, tag := a.NonceSize(), a.Overhead()
		body := buf[:benchDatagram-tag]
		for b.Loop() {
			io.ReadFull(nonces, body[:ns])
			pkt := a.Seal(body[:ns], body[:ns], body[ns:], nil)
			if _, err := a.Open(pkt[ns:ns], pkt[:ns], pkt[ns:], nil); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	for b.Loop() {
		io.ReadFull(nonces, buf[:16])
		binary.LittleEndian.PutUint32(buf[16:], crc32.ChecksumIEEE(buf[20:]))
		block.Encrypt(buf, buf)
		block.Decrypt(buf, buf)
		if crc32.ChecksumIEEE(buf[20:]) != binary.LittleEndian.Uint32(buf[16:]) {
			b.Fatal("checksum")
		}
	}
}

func benchKCPXSealOpen(b *testing.B, block kcpx.BlockCrypt) {
	// kcpx's built-in nonce source, as kcp-go's side uses kcp-go's, rather
	// than the swappable reader TestMain installs.
	kcpx.SetEntropy(nil)
	defer kcpx.SetEntropy(&kcpxNonces)
	pc := kcpxNewPacketCrypter(block)
	tag := kcpxOverhead(pc) - kcpxHeaderSize(pc)
	buf := make([]byte, benchDatagram-tag, benchDatagram)
	b.SetBytes(benchDatagram)
	b.ReportAllocs()
	for b.Loop() {
		pkt := kcpxSeal(pc, buf)
		if _, err := kcpxOpen(pc, pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCRC32 is the checksum both libraries take from hash/crc32 over a
// MaxDatagram-byte datagram (kcp-go's BenchmarkCRC32); one figure serves both.
func BenchmarkCRC32(b *testing.B) {
	buf := make([]byte, benchDatagram)
	b.SetBytes(benchDatagram)
	b.ReportAllocs()
	for b.Loop() {
		crc32.ChecksumIEEE(buf)
	}
}
