package kcp

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// fuzzLayouts are the decoder hints and peer layouts a fuzz input picks from.
var fuzzLayouts = [][2]int{{0, 0}, {1, 1}, {2, 1}, {3, 2}, {4, 2}, {10, 3}, {2, 4}}

// fuzzInput lays out a FuzzFECDecode input: hint layout, peer layout, first
// seqid of the valid traffic that follows, then packets as u16 length + bytes.
func fuzzInput(hint, peer byte, start uint32, pkts ...[]byte) []byte {
	b := []byte{hint, peer, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[2:], start)
	for _, p := range pkts {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// decoderFootprint is the shard memory a decoder holds.
func decoderFootprint(d *fecDecoder) int {
	n := 0
	for i := range d.groups {
		for _, s := range d.groups[i].shards {
			n += cap(s)
		}
	}
	for _, a := range d.acc {
		n += cap(a)
	}
	return n
}

// malformed reports whether decode must refuse pkt whatever the state.
func malformed(pkt []byte) bool {
	if len(pkt) < fecHeaderSizePlus2 || len(pkt) > fecMaxPacket {
		return true
	}
	switch binary.LittleEndian.Uint16(pkt[4:]) {
	case typeData:
		_, ok := fecDataPayload(pkt)
		return !ok
	case typeParity:
		return false
	}
	return true
}

// FuzzFECDecode feeds arbitrary shards to a live decoder, then valid traffic.
// Properties: no panic; every malformed shard is counted as dropped; rebuilt
// slices are well formed; the shard memory stays bounded; and whatever came
// before, valid traffic (lossless in two groups out of three) is recovered
// again within a bounded number of groups.
func FuzzFECDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream [][]byte
	enc := newFECEncoder(4, 2, 0)
	now := uint32(0)
	for range 6 {
		for _, p := range encodeGroup(f, enc, rng, 200, &now) {
			stream = append(stream, p.b)
		}
	}
	f.Add(fuzzInput(4, 4, enc.next, stream...))
	f.Add(fuzzInput(5, 1, 0, stream...))
	f.Add(fuzzInput(0, 5, 1000, stream[:13]...))
	f.Add(fuzzInput(5, 5, 0xfffffff0, rawShard(0xfffffffe, typeParity, 0, 100), rawShard(6, typeData, 0, 9)))
	f.Add(fuzzInput(2, 3, 77, rawShard(1, typeOOB, 6, 12), rawShard(2, 0x51, 0, 30), []byte{1, 2, 3}))
	var forged [][]byte
	for s := uint32(3000); s < 3036; s++ {
		typ := uint16(typeData)
		if s%3 == 2 {
			typ = typeParity
		}
		forged = append(forged, rawShard(s, typ, 20, 40))
	}
	f.Add(fuzzInput(4, 4, 100, forged...))

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 6 {
			return
		}
		hint := fuzzLayouts[int(in[0])%len(fuzzLayouts)]
		peer := fuzzLayouts[1+int(in[1])%(len(fuzzLayouts)-1)]
		start := binary.LittleEndian.Uint32(in[2:])
		d := newFECDecoder(hint[0], hint[1])
		limit := fecMaxGroups*fecMaxTotalShards*fecMaxPacket + fecMaxTotalShards*fecMaxPacket

		in = in[6:]
		bad := uint64(0)
		for len(in) >= 2 {
			n := min(int(binary.LittleEndian.Uint16(in)), len(in)-2)
			pkt := in[2 : 2+n]
			in = in[2+n:]
			if malformed(pkt) {
				bad++
			}
			for _, r := range d.decode(pkt, 0) {
				if len(r) > fecMaxPacket-fecHeaderSizePlus2 {
					t.Fatalf("rebuilt %d bytes", len(r))
				}
			}
		}
		if d.stats.Dropped < bad {
			t.Fatalf("%d malformed shards, %d dropped", bad, d.stats.Dropped)
		}
		if fp := decoderFootprint(d); fp > limit {
			t.Fatalf("decoder holds %d bytes", fp)
		}

		enc := newFECEncoder(peer[0], peer[1], 0)
		enc.next = start % enc.paws / uint32(peer[0]+peer[1]) * uint32(peer[0]+peer[1])
		rng := rand.New(rand.NewPCG(uint64(start), 1))
		now := uint32(0)
		const groups = 30
		for g := range groups {
			pkts := encodeGroup(t, enc, rng, 300, &now)
			lost := -1
			if g%3 == 2 {
				lost = (g / 3) % peer[0]
			}
			var got [][]byte
			for i, p := range pkts {
				if i != lost {
					for _, r := range d.decode(p.b, 0) {
						got = append(got, bytes.Clone(r))
					}
				}
			}
			if lost >= 0 && g >= 2*groups/3 {
				if len(got) != 1 || !bytes.Equal(got[0], pkts[lost].kcp) {
					t.Fatalf("group %d of valid %d/%d traffic: rebuilt %d (decoder %d/%d tuned %v suspect %v)",
						g, peer[0], peer[1], len(got), d.dataShards, d.parityShards, d.tuned, d.suspect)
				}
			}
		}
		if fp := decoderFootprint(d); fp > limit {
			t.Fatalf("decoder holds %d bytes", fp)
		}
	})
}
