package interop

import (
	"encoding/binary"
	"testing"
)

// BenchmarkFECEncode is kcp-go's BenchmarkFECEncode (10+3, MaxDatagram-byte
// datagrams, no crypto room) on both encoders, without its per-packet make.
func BenchmarkFECEncode(b *testing.B) {
	const ds, ps, size = 10, 3, MaxDatagram
	b.Run("kcpgo", func(b *testing.B) {
		e := kcpgoNewFECEncoder(ds, ps, 0)
		benchEncode(b, size, func(p []byte) { kcpgoFECEncode(e, p, 500) })
	})
	b.Run("kcpx", func(b *testing.B) {
		e := kcpxNewFECEncoder(ds, ps, 0)
		var now uint32
		benchEncode(b, size, func(p []byte) { kcpxFECEncode(e, p, now); now++ })
	})
}

func benchEncode(b *testing.B, size int, encode func([]byte)) {
	pkt := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		encode(pkt)
	}
}

// BenchmarkFECDecode feeds a real 10+3 stream of MaxDatagram-byte datagrams with one
// data shard of every group lost (one rebuild per group), as kcp-go's
// BenchmarkFECDecode does with random loss; per datagram fed.
func BenchmarkFECDecode(b *testing.B) {
	const ds, ps = 10, 3
	// One encoded group; its datagrams are replayed with fresh seqids.
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
	b.Run("kcpgo", func(b *testing.B) {
		d := kcpgoNewFECDecoder(ds, ps)
		benchDecode(b, group, func(p []byte) int {
			rs := kcpgoFECDecode(d, p)
			for _, r := range rs {
				kcpgoBufferPut(kcpgoBufferPool, r)
			}
			return len(rs)
		})
	})
	b.Run("kcpx", func(b *testing.B) {
		d := kcpxNewFECDecoder(ds, ps)
		benchDecode(b, group, func(p []byte) int { return len(kcpxFECDecode(d, p, 0)) })
	})
}

func benchDecode(b *testing.B, group [][]byte, decode func([]byte) int) {
	total := uint32(len(group))
	pkt := make([]byte, MaxDatagram)
	b.SetBytes(MaxDatagram)
	b.ReportAllocs()
	var seq uint32
	recovered := 0
	for b.Loop() {
		idx := seq % total
		if idx == 0 { // the lost shard
			seq++
			idx = 1
		}
		copy(pkt, group[idx])
		binary.LittleEndian.PutUint32(pkt, seq)
		recovered += decode(pkt)
		seq++
	}
	if groups := int(seq / total); recovered < groups-1 {
		b.Fatalf("rebuilt %d shards over %d groups", recovered, groups)
	}
}
