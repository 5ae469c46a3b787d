package interop

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"
	"time"

	kcpx "github.com/kcpx/kcp"
	kcpgo "github.com/xtaci/kcp-go/v5"
)

// BenchmarkPaired times kcpx and kcp-go on the same operation in alternating
// blocks of about 50 µs each, so both see the same machine: on a shared,
// noisy host, back-to-back sub-benchmarks drift apart by more than the
// difference being measured. It reports kcpx-ns/op and kcpgo-ns/op (the
// ns/op figure is the pair's). The separate benchmarks (BenchmarkFlush,
// BenchmarkCipher, ...) report each library's allocations.
func BenchmarkPaired(b *testing.B) {
	b.Run("Flush", func(b *testing.B) { runPaired(b, 0, flushOps(b)) })
	b.Run("Input", func(b *testing.B) { runPaired(b, 1376, inputOps(b)) })
	for _, c := range Ciphers {
		if c.IsNil() || c.AEAD {
			continue
		}
		b.Run("Cipher/"+c.Name, func(b *testing.B) { runPaired(b, benchDatagram, cipherOps(b, c)) })
	}
	for _, c := range Ciphers {
		if c.IsNil() {
			continue
		}
		b.Run("SealOpen/"+c.Name, func(b *testing.B) {
			kcpx.SetEntropy(nil) // kcpx's built-in nonce source, as kcp-go's side uses kcp-go's
			defer kcpx.SetEntropy(&kcpxNonces)
			runPaired(b, benchDatagram, sealOpenOps(b, c))
		})
	}
	b.Run("FECEncode", func(b *testing.B) { runPaired(b, MaxDatagram, fecEncodeOps()) })
	b.Run("FECDecode", func(b *testing.B) { runPaired(b, MaxDatagram, fecDecodeOps(b)) })
}

// ops is one operation of each library.
type ops struct{ kcpx, kcpgo func() }

func runPaired(b *testing.B, bytes int64, o ops) {
	// Size a block to about 50 µs of kcpx work.
	block := 1
	for {
		start := time.Now()
		for range block {
			o.kcpx()
		}
		if time.Since(start) > 50*time.Microsecond || block >= 1<<16 {
			break
		}
		block *= 2
	}
	for range block {
		o.kcpgo()
	}
	if bytes > 0 {
		b.SetBytes(2 * bytes * int64(block)) // one iteration: a block of each
	}
	b.ReportAllocs()
	var tx, tg time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for range block {
			o.kcpx()
		}
		t1 := time.Now()
		for range block {
			o.kcpgo()
		}
		tg += time.Since(t1)
		tx += t1.Sub(t0)
		n += block
	}
	b.ReportMetric(float64(tx.Nanoseconds())/float64(n), "kcpx-ns/op")
	b.ReportMetric(float64(tg.Nanoseconds())/float64(n), "kcpgo-ns/op")
}

func flushOps(b *testing.B) ops {
	g := newBenchCore(kcpgoCoreImpl)
	gk := g.(kcpgoCore).KCP
	loadFlight(b, g, func(uint32) { kcpgoFlush(gk, kcpgo.IKCP_FLUSH_FULL) })
	x := newBenchCore(kcpxCoreImpl)
	xk := x.(kcpxCore).KCP
	now := loadFlight(b, x, func(now uint32) { kcpxFlush(xk, now, kcpx.IKCP_FLUSH_FULL) })
	return ops{
		kcpx:  func() { kcpxFlush(xk, now, kcpx.IKCP_FLUSH_FULL) },
		kcpgo: func() { kcpgoFlush(gk, kcpgo.IKCP_FLUSH_FULL) },
	}
}

func inputOp(b *testing.B, impl coreImpl) func() {
	c := impl.new(1, func([]byte, int) {})
	c.WndSize(1024, 1024)
	payload := make([]byte, 1400-24)
	pkt := segment(1, 81, 0, 1024, 0, 0, 0, payload)
	buf := make([]byte, len(payload))
	var sn uint32
	return func() {
		binary.LittleEndian.PutUint32(pkt[12:], sn)
		sn++
		if c.input(pkt) != 0 || c.Recv(buf) != len(payload) {
			b.Fatal("Input/Recv failed")
		}
	}
}

func inputOps(b *testing.B) ops {
	return ops{kcpx: inputOp(b, kcpxCoreImpl), kcpgo: inputOp(b, kcpgoCoreImpl)}
}

func cipherOps(b *testing.B, c Cipher) ops {
	g, err := c.KCPGo(testPass)
	if err != nil {
		b.Fatal(err)
	}
	x, err := c.KCPX(testPass)
	if err != nil {
		b.Fatal(err)
	}
	bx, bg := make([]byte, benchDatagram), make([]byte, benchDatagram)
	return ops{
		kcpx:  func() { x.Encrypt(bx, bx); x.Decrypt(bx, bx) },
		kcpgo: func() { g.Encrypt(bg, bg); g.Decrypt(bg, bg) },
	}
}

func sealOpenOps(b *testing.B, c Cipher) ops {
	g, err := c.KCPGo(testPass)
	if err != nil {
		b.Fatal(err)
	}
	x, err := c.KCPX(testPass)
	if err != nil {
		b.Fatal(err)
	}
	pc := kcpxNewPacketCrypter(x)
	tag := kcpxOverhead(pc) - kcpxHeaderSize(pc)
	bx := make([]byte, benchDatagram-tag, benchDatagram)
	xop := func() {
		if _, err := kcpxOpen(pc, kcpxSeal(pc, bx)); err != nil {
			b.Fatal(err)
		}
	}
	nonces := kcpgo.NewEntropy()
	bg := make([]byte, benchDatagram, benchDatagram+16)
	var gop func()
	if a, ok := g.(kcpgoAEAD); ok {
		ns := a.NonceSize()
		body := bg[:benchDatagram-a.Overhead()]
		gop = func() {
			io.ReadFull(nonces, body[:ns])
			pkt := a.Seal(body[:ns], body[:ns], body[ns:], nil)
			if _, err := a.Open(pkt[ns:ns], pkt[:ns], pkt[ns:], nil); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		gop = func() {
			io.ReadFull(nonces, bg[:16])
			binary.LittleEndian.PutUint32(bg[16:], crc32.ChecksumIEEE(bg[20:]))
			g.Encrypt(bg, bg)
			g.Decrypt(bg, bg)
			if crc32.ChecksumIEEE(bg[20:]) != binary.LittleEndian.Uint32(bg[16:]) {
				b.Fatal("checksum")
			}
		}
	}
	return ops{kcpx: xop, kcpgo: gop}
}

func fecEncodeOps() ops {
	ge, xe := kcpgoNewFECEncoder(10, 3, 0), kcpxNewFECEncoder(10, 3, 0)
	pg, px := make([]byte, MaxDatagram), make([]byte, MaxDatagram)
	var now uint32
	return ops{
		kcpx:  func() { kcpxFECEncode(xe, px, now); now++ },
		kcpgo: func() { kcpgoFECEncode(ge, pg, 500) },
	}
}

func fecDecodeOps(b *testing.B) ops {
	const ds, ps = 10, 3
	enc := kcpxNewFECEncoder(ds, ps, 0)
	var group [][]byte
	for i := range ds {
		p := make([]byte, MaxDatagram)
		for j := 8; j < len(p); j++ {
			p[j] = byte(i*31 + j)
		}
		par := kcpxFECEncode(enc, p, uint32(i))
		group = append(group, p)
		for _, q := range par {
			group = append(group, append([]byte(nil), q...))
		}
	}
	feeder := func(decode func([]byte)) func() {
		total := uint32(len(group))
		pkt := make([]byte, MaxDatagram)
		var seq uint32
		return func() {
			if seq%total == 0 { // the lost shard
				seq++
			}
			copy(pkt, group[seq%total])
			binary.LittleEndian.PutUint32(pkt, seq)
			decode(pkt)
			seq++
		}
	}
	gd, xd := kcpgoNewFECDecoder(ds, ps), kcpxNewFECDecoder(ds, ps)
	return ops{
		kcpx: feeder(func(p []byte) { kcpxFECDecode(xd, p, 0) }),
		kcpgo: feeder(func(p []byte) {
			for _, r := range kcpgoFECDecode(gd, p) {
				kcpgoBufferPut(kcpgoBufferPool, r)
			}
		}),
	}
}
