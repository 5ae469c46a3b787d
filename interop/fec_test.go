package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// fecGroupStream makes n KCP payloads (24..max bytes, a quarter of them
// bare 24-byte ACK-sized packets), each laid out as a datagram with offset
// bytes of crypto room and 8 bytes of FEC room in front.
func fecDatagrams(rng *rand.Rand, n, offset, max int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		size := 24
		if rng.IntN(4) != 0 {
			size = 24 + rng.IntN(max-24+1)
		}
		b := make([]byte, offset+8+size)
		for j := offset + 8; j < len(b); j++ {
			b[j] = byte(rng.Uint32())
		}
		out[i] = b
	}
	return out
}

func copyAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, p := range in {
		out[i] = append([]byte(nil), p...)
	}
	return out
}

var fecLayouts = []struct{ ds, ps int }{{10, 3}, {10, 1}, {3, 2}, {1, 1}, {20, 5}, {4, 4}}

// TestFECParityIdentical feeds the same datagrams to kcp-go's FEC encoder and
// kcpx's, for several layouts and crypto-header offsets, and checks the data
// shard headers and every parity datagram (header and bytes) are identical.
func TestFECParityIdentical(t *testing.T) {
	for _, l := range fecLayouts {
		for _, offset := range []int{0, 12, 20} {
			t.Run(fmt.Sprintf("%d+%d/offset%d", l.ds, l.ps, offset), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(l.ds*100+l.ps), uint64(offset)))
				groups := 4
				in := fecDatagrams(rng, groups*l.ds, offset, MaxDatagram-offset-8)
				g := kcpgoNewFECEncoder(l.ds, l.ps, offset)
				x := kcpxNewFECEncoder(l.ds, l.ps, offset)
				gin, xin := copyAll(in), copyAll(in)
				parities := 0
				for i := range in {
					gp := kcpgoFECEncode(g, gin[i], 500)
					xp := kcpxFECEncode(x, xin[i], 1000+uint32(i))
					if !bytes.Equal(xin[i][offset:], gin[i][offset:]) {
						t.Fatalf("datagram %d: kcpx data shard differs from kcp-go's at byte %d", i, offset+firstDiff(xin[i][offset:], gin[i][offset:]))
					}
					if len(xp) != len(gp) {
						t.Fatalf("datagram %d: kcpx returned %d parity datagrams, kcp-go %d", i, len(xp), len(gp))
					}
					for k := range gp {
						if !bytes.Equal(xp[k][offset:], gp[k][offset:]) {
							t.Fatalf("datagram %d, parity %d: kcpx (%d bytes) differs from kcp-go (%d bytes) at byte %d",
								i, k, len(xp[k]), len(gp[k]), offset+firstDiff(xp[k][offset:], gp[k][offset:]))
						}
						parities++
					}
				}
				// With one data shard per group there is no earlier shard to
				// time the first group against: both libraries skip its parity.
				want := groups * l.ps
				if l.ds == 1 {
					want -= l.ps
				}
				if parities != want {
					t.Fatalf("%d parity datagrams for %d groups of %d+%d, want %d", parities, groups, l.ds, l.ps, want)
				}
			})
		}
	}
}

// fecWire encodes datagrams with one library's encoder and returns every
// datagram it would send, from the FEC header on, in order.
func fecWire(enc func(b []byte, i int) [][]byte, in [][]byte, offset int) [][]byte {
	var wire [][]byte
	for i, b := range in {
		ps := enc(b, i)
		wire = append(wire, append([]byte(nil), b[offset:]...))
		for _, p := range ps {
			wire = append(wire, append([]byte(nil), p[offset:]...))
		}
	}
	return wire
}

// TestFECRecoveryCrossLibrary encodes with one library, loses 1..ps data
// shards of every group, decodes with the other, and checks each lost KCP
// payload comes back byte-exact, in both directions.
func TestFECRecoveryCrossLibrary(t *testing.T) {
	for _, l := range fecLayouts {
		for _, dir := range []string{"kcpgo_to_kcpx", "kcpx_to_kcpgo"} {
			t.Run(fmt.Sprintf("%d+%d/%s", l.ds, l.ps, dir), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(l.ds*7+l.ps), 99))
				const groups = 12
				in := fecDatagrams(rng, groups*l.ds, 0, 1400)
				var wire [][]byte
				var decode func(pkt []byte) [][]byte
				if dir == "kcpgo_to_kcpx" {
					e := kcpgoNewFECEncoder(l.ds, l.ps, 0)
					wire = fecWire(func(b []byte, _ int) [][]byte { return kcpgoFECEncode(e, b, 500) }, copyAll(in), 0)
					d := kcpxNewFECDecoder(l.ds, l.ps)
					decode = func(pkt []byte) [][]byte { return kcpxFECDecode(d, pkt, 0) }
				} else {
					e := kcpxNewFECEncoder(l.ds, l.ps, 0)
					wire = fecWire(func(b []byte, i int) [][]byte { return kcpxFECEncode(e, b, uint32(i)) }, copyAll(in), 0)
					d := kcpgoNewFECDecoder(l.ds, l.ps)
					decode = func(pkt []byte) [][]byte {
						var out [][]byte
						for _, r := range kcpgoFECDecode(d, pkt) {
							// kcp-go's session validates the size field the same way.
							if sz := int(binary.LittleEndian.Uint16(r)); len(r) >= 2 && sz >= 2 && sz <= len(r) {
								out = append(out, append([]byte(nil), r[2:sz]...))
							}
							kcpgoBufferPut(kcpgoBufferPool, r)
						}
						return out
					}
				}
				total := uint32(l.ds + l.ps)
				// A group loses data shards only if its parity was sent (the
				// first group of a 1+n layout has none, in both libraries).
				hasParity := map[uint32]bool{}
				for _, pkt := range wire {
					if binary.LittleEndian.Uint16(pkt[4:]) == 0xf2 {
						hasParity[binary.LittleEndian.Uint32(pkt)/total] = true
					}
				}
				if len(hasParity) < groups-1 {
					t.Fatalf("parity for only %d of %d groups", len(hasParity), groups)
				}
				want := map[string]bool{}
				lost, got := 0, 0
				for _, pkt := range wire {
					seqid := binary.LittleEndian.Uint32(pkt)
					gi, idx := seqid/total, int(seqid%total)
					drop := 1 + int(gi)%l.ps // lose 1..ps data shards, from index gi%ds on
					first := int(gi) % (l.ds - min(drop, l.ds) + 1)
					if hasParity[gi] && idx < l.ds && idx >= first && idx < first+drop {
						want[string(pkt[8:])] = true
						lost++
						continue
					}
					for _, r := range decode(pkt) {
						if !want[string(r)] {
							t.Fatalf("group %d: recovered %d bytes that match no lost payload", gi, len(r))
						}
						delete(want, string(r))
						got++
					}
				}
				if lost == 0 || got != lost || len(want) != 0 {
					t.Fatalf("recovered %d of %d lost data shards", got, lost)
				}
			})
		}
	}
}
