package kcp

import (
	"math/rand/v2"
	"testing"
)

// fecStorage is the bytes of shard and rebuild storage d holds.
func fecStorage(d *fecDecoder) int {
	n := 0
	for i := range d.groups {
		for _, b := range d.groups[i].shards {
			n += cap(b)
		}
	}
	for _, b := range d.acc {
		n += cap(b)
	}
	return n
}

// fecLayoutFlood sends count shards of n bytes each in the pattern of a
// ds/ps layout, numbered from 0.
func fecLayoutFlood(d *fecDecoder, ds, ps, count, n int) {
	for seq := range count {
		typ := uint16(typeData)
		if seq%(ds+ps) >= ds {
			typ = typeParity
		}
		d.decode(rawShard(uint32(seq), typ, 2, n), 0)
	}
}

// TestFECForeignDecoderBounded: a session without FEC configured decodes
// the FEC its peer sends, so a peer can pick the layout. 1,375 shards of 8
// bytes in a 120/120 pattern made such a decoder hold 1.1 MiB (each shard in
// a full-size buffer); storage is now sized by the shards, and bounded by
// fecForeignBudget whatever their size. A genuine 10/3 peer still recovers.
func TestFECForeignDecoderBounded(t *testing.T) {
	for _, size := range []int{8, 1500} {
		d := newFECDecoder(0, 0)
		fecLayoutFlood(d, 120, 120, 1375, size)
		got := fecStorage(d)
		t.Logf("1,375 shards of %d B in a 120/120 layout: %d B of storage (tuned %v, %d/%d)", size, got, d.tuned, d.dataShards, d.parityShards)
		if !d.tuned || d.total != 240 {
			t.Fatalf("the decoder did not take the peer's layout (%d/%d): the flood did not exercise it", d.dataShards, d.parityShards)
		}
		if got > fecForeignBudget || d.held != got {
			t.Fatalf("storage %d B (accounted %d), budget %d", got, d.held, fecForeignBudget)
		}
		if size == 8 && got > 3*240*fecBlock {
			t.Fatalf("8-byte shards hold %d B: not sized by their length", got)
		}
	}

	// kcptun's 10/3 with full-size shards, losing one data shard a group.
	enc := newFECEncoder(10, 3, 0)
	d := newFECDecoder(0, 0)
	rng := rand.New(rand.NewPCG(4, 5))
	now := uint32(0)
	rebuilt := 0
	for range 4 { // the decoder learns the layout
		for _, p := range encodeGroup(t, enc, rng, 1400, &now) {
			d.decode(p.b, 0)
		}
	}
	for g := range 20 {
		pkts := encodeGroup(t, enc, rng, 1400, &now)
		rebuilt += deliver(t, d, pkts, map[int]bool{g % 10: true})
	}
	if rebuilt != 20 {
		t.Fatalf("a foreign 10/3 decoder rebuilt %d of 20 lost shards", rebuilt)
	}
	if got := fecStorage(d); got > fecForeignBudget {
		t.Fatalf("10/3 holds %d B, over the budget", got)
	}
}
