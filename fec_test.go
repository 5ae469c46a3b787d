package kcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
)

// fecPkt is one FEC datagram as it leaves the encoder, without the cipher
// room, and for a data shard the KCP bytes it carries.
type fecPkt struct {
	b    []byte
	kcp  []byte
	data bool
}

func (p fecPkt) seq() uint32 { return binary.LittleEndian.Uint32(p.b) }

// katKCP is the KCP byte pattern the known-answer vectors were made with.
func katKCP(n, salt int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + salt*31 + 3)
	}
	return b
}

// encodeOne runs one KCP payload through enc and returns the data datagram
// and any parity datagrams, copied out of encoder memory.
func encodeOne(t testing.TB, enc *fecEncoder, kcp []byte, now uint32) []fecPkt {
	t.Helper()
	off := enc.offset
	b := make([]byte, off+fecHeaderSizePlus2+len(kcp))
	copy(b[off+fecHeaderSizePlus2:], kcp)
	ps := enc.encode(b, now)
	out := []fecPkt{{b: b[off:], kcp: kcp, data: true}}
	for _, p := range ps {
		out = append(out, fecPkt{b: bytes.Clone(p[off:])})
	}
	return out
}

// encodeGroup encodes one whole group of random-sized payloads, 1 ms apart.
func encodeGroup(t testing.TB, enc *fecEncoder, rng *rand.Rand, maxLen int, now *uint32) []fecPkt {
	t.Helper()
	var out []fecPkt
	for range enc.dataShards {
		kcp := make([]byte, 1+rng.IntN(maxLen))
		for i := range kcp {
			kcp[i] = byte(rng.Uint32())
		}
		*now++
		out = append(out, encodeOne(t, enc, kcp, *now)...)
	}
	return out
}

// feed gives pkt to d and returns copies of what it rebuilt.
func feed(d *fecDecoder, pkt []byte) [][]byte {
	var out [][]byte
	for _, r := range d.decode(pkt, 0) {
		out = append(out, bytes.Clone(r))
	}
	return out
}

// deliver feeds every packet of pkts not in lost and checks that exactly the
// KCP bytes of the lost data shards come back.
func deliver(t *testing.T, d *fecDecoder, pkts []fecPkt, lost map[int]bool) (rebuilt int) {
	t.Helper()
	want := map[string]int{}
	for i, p := range pkts {
		if lost[i] && p.data {
			want[string(p.kcp)]++
		}
	}
	nwant := 0
	for _, n := range want {
		nwant += n
	}
	got := 0
	for i, p := range pkts {
		if lost[i] {
			continue
		}
		for _, r := range feed(d, p.b) {
			if want[string(r)] == 0 {
				t.Fatalf("rebuilt %d bytes that were not lost: %x", len(r), r[:min(len(r), 16)])
			}
			want[string(r)]--
			got++
		}
	}
	if got != nwant {
		t.Fatalf("rebuilt %d shards, lost %d data shards", got, nwant)
	}
	return got
}

func TestFECLayoutLimits(t *testing.T) {
	parallelTest(t)
	tests := []struct {
		ds, ps int
		ok     bool
	}{
		{0, 3, false}, {10, 0, false}, {-1, 3, false}, {10, -1, false},
		{200, 56, false}, {254, 2, false}, {1, 1, true}, {10, 3, true}, {200, 55, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.ds, tt.ps), func(t *testing.T) {
			if got := newFECEncoder(tt.ds, tt.ps, 0) != nil; got != tt.ok {
				t.Fatalf("encoder made = %v, want %v", got, tt.ok)
			}
			d := newFECDecoder(tt.ds, tt.ps)
			if d == nil {
				t.Fatal("decoder is nil")
			}
			if d.tuned != tt.ok {
				t.Fatalf("decoder tuned = %v, want %v", d.tuned, tt.ok)
			}
		})
	}
}

// The vectors below were produced by kcp-go v5.6.72's own fecEncoder (its
// unexported newFECEncoder/encode, and encodeOOB), called from a scratch test
// file added to a copy of its module directory in /tmp; kcp-go uses
// reedsolomon v1.12.0 there, so they also pin that v1.14.2 gives the same
// parity bytes.
func TestFECKnownAnswers(t *testing.T) {
	t.Run("3/2 offset 0", func(t *testing.T) {
		enc := newFECEncoder(3, 2, 0)
		var got []string
		for k, n := range []int{5, 11, 2} {
			for _, p := range encodeOne(t, enc, katKCP(n, k), 1) {
				got = append(got, hex.EncodeToString(p.b))
			}
		}
		for _, p := range encodeOne(t, enc, katKCP(4, 9), 2) {
			got = append(got, hex.EncodeToString(p.b))
		}
		want := []string{
			"00000000f1000700030a11181f",
			"01000000f1000d00222930373e454c535a6168",
			"02000000f10004004148",
			"03000000f2000e00606b212f21454c535a6168",
			"04000000f2005d00879e622d48125aa2ea2f67",
			"05000000f10006001a21282f",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("datagrams\n got %q\nwant %q", got, want)
		}
	})
	t.Run("10/3 offset 20", func(t *testing.T) {
		enc := newFECEncoder(10, 3, 20)
		sizes := []int{1372, 24, 700, 1372, 100, 1200, 48, 1372, 999, 333}
		want := []string{
			"b1087e7877687a5d5b0a02feaf08bc72c74728d57f8de40255a1a54b5e8ba947",
			"abb41171484271142ae807fb10a7d95ca8f6255365179c19229f53473b8dddce",
			"5519f02ed3f7c0297a1a07dac6597a3d633ffcffddbe12c462b6d5b971a7e7f5",
			"ee5c5cc9fffabdfcafc0dd0b301080acc2056373c3200d2402901840f5553cf7",
			"a0565136808df06d885b913ee84654234df0fc2adeed84326ba1bca6866e3817",
			"61f1a311f5e8487c205844c3522ef83d885e4c260365abeeffadc67fc7f1cd06",
			"6171b00cf824f8097bb93f4c732dfdf1ffe7f03b6bb9761202987a56aa99130a",
			"e5d2024ca8965837a0111c42eca4d00686d654899456ffbc3645008c12787dbd",
			"5ef39f77fe12d0c3ed36cca0f49741ea94e28cf4bae2da0090f68c2ee5c65966",
			"12663083c173527a20b4939e80428b381a0a17fc2b8b276472b2c64f1ccefbed",
			"7015a558c5304a254bfae8698a2ab8ba72518eee3b1f0a82a945d3aef2214eec",
			"87854842cd5a8913e969ef9339e4415062b7df74fb713c6340b9f2bc6f2fc47e",
			"39b6bb98d076cc41b7456cffc871fff0e5d25d94ef90e3b8ecf869e395382da2",
		}
		var got []string
		var pkts []fecPkt
		for k, n := range sizes {
			for _, p := range encodeOne(t, enc, katKCP(n, k+100), uint32(k)) {
				sum := sha256.Sum256(p.b)
				got = append(got, hex.EncodeToString(sum[:]))
				pkts = append(pkts, p)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("datagram sha256\n got %q\nwant %q", got, want)
		}
		for i, p := range pkts[10:] {
			if len(p.b) != 1400-20 || p.seq() != uint32(10+i) {
				t.Fatalf("parity %d: len %d seqid %d", i, len(p.b), p.seq())
			}
		}
	})
	t.Run("decode kcp-go group", func(t *testing.T) {
		raw := []string{
			"00000000f1000700030a11181f",
			"01000000f1000d00222930373e454c535a6168",
			"02000000f10004004148",
			"03000000f2000e00606b212f21454c535a6168",
			"04000000f2005d00879e622d48125aa2ea2f67",
		}
		for _, lost := range [][]int{{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}} {
			d := newFECDecoder(3, 2)
			var pkts []fecPkt
			for i, s := range raw {
				b, _ := hex.DecodeString(s)
				p := fecPkt{b: b, data: i < 3}
				if p.data {
					p.kcp, _ = fecDataPayload(b)
				}
				pkts = append(pkts, p)
			}
			m := map[int]bool{}
			for _, i := range lost {
				m[i] = true
			}
			if n := deliver(t, d, pkts, m); n != len(lost) {
				t.Fatalf("lost %v: rebuilt %d", lost, n)
			}
		}
	})
	t.Run("oob", func(t *testing.T) {
		b := make([]byte, fecOOBHeaderSize+3)
		copy(b[fecOOBHeaderSize:], "abc")
		putOOBHeader(b, 0x11223344, 3)
		if got := hex.EncodeToString(b); got != "fffffffff300090044332211616263" {
			t.Fatalf("oob datagram %s", got)
		}
	})
}

func TestFECEncoderNumbering(t *testing.T) {
	for _, tt := range []struct{ ds, ps, offset int }{{1, 1, 0}, {3, 2, 0}, {10, 3, 20}, {7, 5, 12}} {
		t.Run(fmt.Sprintf("%d/%d+%d", tt.ds, tt.ps, tt.offset), func(t *testing.T) {
			enc := newFECEncoder(tt.ds, tt.ps, tt.offset)
			rng := rand.New(rand.NewPCG(1, 2))
			now := uint32(1000)
			var seq uint32
			for g := range 5 {
				pkts := encodeGroup(t, enc, rng, 1300, &now)
				if g == 0 && tt.ds == 1 {
					// kcp-go skips the first group when ds is 1: there is
					// no earlier data shard to time it against.
					if len(pkts) != 1 {
						t.Fatalf("first single-shard group sent %d datagrams", len(pkts))
					}
					seq += uint32(tt.ds + tt.ps)
					continue
				}
				if len(pkts) != tt.ds+tt.ps {
					t.Fatalf("group %d: %d datagrams", g, len(pkts))
				}
				longest := 0
				for i, p := range pkts {
					if p.seq() != seq {
						t.Fatalf("group %d shard %d: seqid %d, want %d", g, i, p.seq(), seq)
					}
					seq++
					typ := binary.LittleEndian.Uint16(p.b[4:])
					if p.data {
						size := int(binary.LittleEndian.Uint16(p.b[6:]))
						if typ != typeData || size != 2+len(p.kcp) || !bytes.Equal(p.b[8:], p.kcp) {
							t.Fatalf("data shard %d: type %#x size %d, %d KCP bytes", i, typ, size, len(p.kcp))
						}
						longest = max(longest, len(p.b))
					} else if typ != typeParity || len(p.b) != longest {
						t.Fatalf("parity %d: type %#x len %d, want len %d", i, typ, len(p.b), longest)
					}
				}
			}
		})
	}
}

func TestFECParitySkip(t *testing.T) {
	tests := []struct {
		name   string
		times  []uint32 // ms clock of the three data shards of a 3/2 group
		parity bool
	}{
		{"close", []uint32{0, 10, 20}, true},
		{"slow start then close", []uint32{0, 5000, 5499}, true},
		{"last gap 499", []uint32{100, 200, 699}, true},
		{"last gap 500", []uint32{100, 200, 700}, false},
		{"last gap long", []uint32{100, 200, 9000}, false},
		{"clock wraps", []uint32{0xffffff00, 0xffffffff, 0x10}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := newFECEncoder(3, 2, 4)
			for g := range 3 {
				var pkts []fecPkt
				for i, ts := range tt.times {
					pkts = append(pkts, encodeOne(t, enc, katKCP(10+i, i), ts+uint32(g)*20000)...)
				}
				if got := len(pkts) == 5; got != tt.parity {
					t.Fatalf("group %d: parity sent = %v, want %v", g, got, tt.parity)
				}
				// seqids stay aligned to groups whether or not parity went out
				if s := pkts[0].seq(); s != uint32(5*g) {
					t.Fatalf("group %d starts at seqid %d", g, s)
				}
			}
		})
	}
}

func TestFECRecovery(t *testing.T) {
	for _, tt := range []struct{ ds, ps, maxLen int }{
		{1, 1, 1372}, {3, 2, 200}, {4, 4, 1372}, {10, 3, 1372}, {20, 5, 900}, {2, 8, 64},
	} {
		t.Run(fmt.Sprintf("%d/%d", tt.ds, tt.ps), func(t *testing.T) {
			total := tt.ds + tt.ps
			enc := newFECEncoder(tt.ds, tt.ps, 0)
			d := newFECDecoder(tt.ds, tt.ps)
			rng := rand.New(rand.NewPCG(uint64(tt.ds), uint64(tt.ps)))
			now := uint32(0)
			encodeGroup(t, enc, rng, tt.maxLen, &now) // ds 1: the first group has no parity
			for losses := 1; losses <= tt.ps; losses++ {
				var rebuilt, lostData int
				for _, lost := range lossSets(rng, total, losses, 120) {
					pkts := encodeGroup(t, enc, rng, tt.maxLen, &now)
					for i := range lost {
						if pkts[i].data {
							lostData++
						}
					}
					rebuilt += deliver(t, d, pkts, lost)
				}
				if rebuilt != lostData {
					t.Fatalf("%d losses per group: rebuilt %d of %d", losses, rebuilt, lostData)
				}
			}
			st := d.stats.take()
			if st.Recovered == 0 || st.Errs != 0 || st.Dropped != 0 || st.ParityShards == 0 {
				t.Fatalf("stats %+v", st)
			}
			if again := d.stats.take(); again.Recovered != 0 || again.ParityShards != 0 {
				t.Fatalf("take did not zero the counters: %+v", again)
			}
		})
	}
}

// lossSets returns every set of k indices out of n when there are at most
// limit of them, else limit random ones.
func lossSets(rng *rand.Rand, n, k, limit int) []map[int]bool {
	var all []map[int]bool
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(all) > limit {
			return
		}
		if len(cur) == k {
			m := map[int]bool{}
			for _, i := range cur {
				m[i] = true
			}
			all = append(all, m)
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	if len(all) <= limit {
		return all
	}
	all = all[:0]
	for range limit {
		m := map[int]bool{}
		for len(m) < k {
			m[rng.IntN(n)] = true
		}
		all = append(all, m)
	}
	return all
}

func TestFECSeqidWrap(t *testing.T) {
	for _, tt := range []struct{ ds, ps int }{{10, 3}, {3, 2}, {1, 2}} {
		t.Run(fmt.Sprintf("%d/%d", tt.ds, tt.ps), func(t *testing.T) {
			total := tt.ds + tt.ps
			enc := newFECEncoder(tt.ds, tt.ps, 0)
			d := newFECDecoder(tt.ds, tt.ps)
			enc.next = enc.paws - uint32(2*total)
			rng := rand.New(rand.NewPCG(7, 7))
			now := uint32(0)
			want := enc.next
			for g := range 5 {
				pkts := encodeGroup(t, enc, rng, 1000, &now)
				if got := pkts[0].seq(); got != want {
					t.Fatalf("group %d starts at %d, want %d", g, got, want)
				}
				want = uint32((uint64(want) + uint64(total)) % uint64(enc.paws))
				if g == 0 && tt.ds == 1 {
					continue
				}
				// lose the first data shard and, when there is room, one parity
				lost := map[int]bool{0: true}
				if tt.ps > 1 {
					lost[tt.ds] = true
				}
				if n := deliver(t, d, pkts, lost); n != 1 {
					t.Fatalf("group %d: rebuilt %d", g, n)
				}
			}
			if want >= enc.paws || want > uint32(3*total) {
				t.Fatalf("seqids did not wrap: next group at %d", want)
			}
		})
	}
}

func TestFECMismatchedPeer(t *testing.T) {
	tests := []struct {
		name           string
		hintDS, hintPS int
		peerDS, peerPS int
	}{
		{"hint 10/3 peer 10/1", 10, 3, 10, 1},
		{"hint 10/3 peer 4/2", 10, 3, 4, 2},
		{"hint 3/2 peer 20/5", 3, 2, 20, 5},
		{"hint 1/1 peer 10/3", 1, 1, 10, 3},
		{"receiver without FEC, peer 10/3", 0, 0, 10, 3},
		{"receiver without FEC, peer 1/1", 0, 0, 1, 1},
		{"hint 4/2 peer 2/4", 4, 2, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := newFECEncoder(tt.peerDS, tt.peerPS, 0)
			d := newFECDecoder(tt.hintDS, tt.hintPS)
			rng := rand.New(rand.NewPCG(3, uint64(tt.peerDS)))
			now := uint32(0)
			warm := 0
			for !d.tuned || d.dataShards != tt.peerDS || d.parityShards != tt.peerPS {
				warm++
				if warm > 12 {
					t.Fatalf("layout after %d groups: %d/%d tuned=%v", warm, d.dataShards, d.parityShards, d.tuned)
				}
				for _, p := range encodeGroup(t, enc, rng, 1300, &now) {
					d.decode(p.b, 0)
				}
			}
			t.Logf("layout found after %d groups", warm)
			for g := range 20 {
				pkts := encodeGroup(t, enc, rng, 1300, &now)
				lost := map[int]bool{g % tt.peerDS: true}
				if n := deliver(t, d, pkts, lost); n != 1 {
					t.Fatalf("group %d: rebuilt %d", g, n)
				}
			}
		})
	}
}

// hostile builds the bad shards of one test case. next is the seqid of the
// next valid shard; layout 4/2.
type hostileCase struct {
	name   string
	strict bool // every later lossy group must recover, not only after settling
	pkts   func(next uint32, rng *rand.Rand) [][]byte
}

func rawShard(seq uint32, typ uint16, size int, n int) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, seq)
	binary.LittleEndian.PutUint16(b[4:], typ)
	if n >= 8 {
		binary.LittleEndian.PutUint16(b[6:], uint16(size))
	}
	return b
}

func TestFECHostileShards(t *testing.T) {
	one := func(f func(next uint32) []byte) func(uint32, *rand.Rand) [][]byte {
		return func(next uint32, _ *rand.Rand) [][]byte { return [][]byte{f(next)} }
	}
	cases := []hostileCase{
		{"seqid beyond paws", true, one(func(uint32) []byte { return rawShard(0xfffffffe, typeParity, 0, 100) })},
		{"huge jump ahead", true, one(func(n uint32) []byte { return rawShard(n+6*(1<<28), typeData, 90, 100) })},
		{"far behind", true, one(func(n uint32) []byte { return rawShard(n-6*(1<<20), typeParity, 0, 100) })},
		{"parity type at data index", true, one(func(n uint32) []byte { return rawShard(n+6, typeParity, 0, 100) })},
		{"data type at parity index", true, one(func(n uint32) []byte { return rawShard(n+4, typeData, 90, 100) })},
		{"size zero", true, one(func(n uint32) []byte { return rawShard(n+6, typeData, 0, 100) })},
		{"size beyond packet", true, one(func(n uint32) []byte { return rawShard(n+6, typeData, 200, 100) })},
		{"unknown type", true, one(func(n uint32) []byte { return rawShard(n, 0x00f4, 10, 100) })},
		{"oob type", true, one(func(n uint32) []byte { return rawShard(n, typeOOB, 10, 100) })},
		{"short", true, one(func(n uint32) []byte { return rawShard(n, typeData, 2, 7) })},
		{"too long", true, one(func(n uint32) []byte { return rawShard(n, typeData, 1495, 1501) })},
		{"forged shards for later groups", true, func(n uint32, _ *rand.Rand) [][]byte {
			// They hold two of the three slots unless given up; the first
			// would corrupt group 20's rebuild if still held then.
			return [][]byte{rawShard(n+6*20+3, typeData, 30, 40), rawShard(n+6*500, typeData, 30, 40)}
		}},
		{"forged 2/1 layout far away", false, func(n uint32, _ *rand.Rand) [][]byte {
			var out [][]byte
			base := (n + 1<<24) / 3 * 3
			for s := base; s < base+3*12; s++ {
				typ := uint16(typeData)
				if s%3 == 2 {
					typ = typeParity
				}
				out = append(out, rawShard(s, typ, 20, 40))
			}
			return out
		}},
		{"random flood", false, func(_ uint32, rng *rand.Rand) [][]byte {
			var out [][]byte
			for range 300 {
				b := make([]byte, 8+rng.IntN(200))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				binary.LittleEndian.PutUint16(b[4:], uint16(typeData+rng.IntN(2)))
				out = append(out, b)
			}
			return out
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := newFECEncoder(4, 2, 0)
			d := newFECDecoder(4, 2)
			rng := rand.New(rand.NewPCG(11, 12))
			now := uint32(0)
			for range 5 {
				for _, p := range encodeGroup(t, enc, rng, 500, &now) {
					d.decode(p.b, 0)
				}
			}
			before := d.stats
			for _, b := range tc.pkts(enc.next, rng) {
				d.decode(b, 0)
			}
			if d.stats == before {
				t.Fatal("no counter moved for the bad shards")
			}
			firstGood := -1
			for g := range 40 {
				pkts := encodeGroup(t, enc, rng, 500, &now)
				lost := g % 4
				var got [][]byte
				for i, p := range pkts {
					if i != lost {
						got = append(got, feed(d, p.b)...)
					}
				}
				ok := len(got) == 1 && bytes.Equal(got[0], pkts[lost].kcp)
				switch {
				case !ok && (tc.strict || firstGood >= 0):
					t.Fatalf("group %d after the bad shards: rebuilt %d (first good %d)", g, len(got), firstGood)
				case ok && firstGood < 0:
					firstGood = g
				}
			}
			if firstGood < 0 || firstGood > 12 {
				t.Fatalf("recovery resumed at group %d", firstGood)
			}
			t.Logf("recovery from group %d on; layout %d/%d", firstGood, d.dataShards, d.parityShards)
		})
	}
}

func TestFECDataPayload(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want []byte
		ok   bool
	}{
		{"exact", append(rawShard(1, typeData, 5, 8), 'a', 'b', 'c'), []byte("abc"), true},
		{"empty KCP", rawShard(1, typeData, 2, 8), []byte{}, true},
		{"trailing bytes", append(rawShard(1, typeData, 3, 8), 'a', 'b'), []byte("a"), true},
		{"size 1", append(rawShard(1, typeData, 1, 8), 'a'), nil, false},
		{"size past end", append(rawShard(1, typeData, 4, 8), 'a'), nil, false},
		{"parity", append(rawShard(1, typeParity, 3, 8), 'a'), nil, false},
		{"short", rawShard(1, typeData, 2, 7), nil, false},
		{"nil", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fecDataPayload(tt.pkt)
			if ok != tt.ok || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFECOOB(t *testing.T) {
	b := make([]byte, fecOOBHeaderSize+5)
	copy(b[fecOOBHeaderSize:], "hello")
	putOOBHeader(b, 0xdeadbeef, 5)
	conv, payload, ok := parseOOB(b)
	if !ok || conv != 0xdeadbeef || string(payload) != "hello" {
		t.Fatalf("round trip: %x %q %v", conv, payload, ok)
	}
	empty := make([]byte, fecOOBHeaderSize)
	putOOBHeader(empty, 7, 0)
	if conv, payload, ok := parseOOB(empty); !ok || conv != 7 || len(payload) != 0 {
		t.Fatalf("empty payload: %d %q %v", conv, payload, ok)
	}
	bad := []struct {
		name string
		pkt  []byte
	}{
		{"short", b[:fecOOBHeaderSize-1]},
		{"data type", rawShard(0xffffffff, typeData, 6, 12)},
		{"size below 6", rawShard(0xffffffff, typeOOB, 5, 12)},
		{"size past end", rawShard(0xffffffff, typeOOB, 8, 13)},
		{"nil", nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, ok := parseOOB(tt.pkt); ok {
				t.Fatal("accepted")
			}
		})
	}
}

// steadyGroup is a 10/3 group of datagrams carrying kcpLen KCP bytes, whose seqids are
// rewritten to feed a decoder forever without allocating.
func steadyGroup(t testing.TB, kcpLen int) [][]byte {
	enc := newFECEncoder(10, 3, 0)
	rng := rand.New(rand.NewPCG(5, 5))
	var out [][]byte
	for range 10 {
		kcp := make([]byte, kcpLen)
		for i := range kcp {
			kcp[i] = byte(rng.Uint32())
		}
		for _, p := range encodeOne(t, enc, kcp, 1) {
			out = append(out, p.b)
		}
	}
	if len(out) != 13 {
		t.Fatalf("group of %d datagrams", len(out))
	}
	return out
}

func TestFECZeroAllocs(t *testing.T) {
	t.Run("encode", func(t *testing.T) {
		enc := newFECEncoder(10, 3, 20)
		b := make([]byte, 1500)
		now := uint32(0)
		enc.encode(b, now)
		if n := testing.AllocsPerRun(200, func() { now++; enc.encode(b, now) }); n != 0 {
			t.Fatalf("encode: %v allocs per packet", n)
		}
	})
	for _, lost := range [][]int{{3}, {0, 9}, {1, 5, 12}} {
		t.Run(fmt.Sprintf("decode losing %v", lost), func(t *testing.T) {
			group := steadyGroup(t, 1392)
			d := newFECDecoder(10, 3)
			var g uint32
			var rebuilt int
			run := func() {
				for i, p := range group {
					binary.LittleEndian.PutUint32(p, g*13+uint32(i))
					skip := false
					for _, l := range lost {
						skip = skip || l == i
					}
					if !skip {
						rebuilt += len(d.decode(p, 0))
					}
				}
				g++
			}
			run()
			if n := testing.AllocsPerRun(50, run); n != 0 {
				t.Fatalf("decode: %v allocs per group", n)
			}
			wantData := 0
			for _, l := range lost {
				if l < 10 {
					wantData++
				}
			}
			if rebuilt != 52*wantData {
				t.Fatalf("rebuilt %d shards in 52 groups", rebuilt)
			}
		})
	}
}

func TestFECBigLayout(t *testing.T) {
	// the largest layout, losing as many data shards as there is parity
	enc := newFECEncoder(128, 127, 0)
	d := newFECDecoder(128, 127)
	rng := rand.New(rand.NewPCG(9, 9))
	now := uint32(0)
	pkts := encodeGroup(t, enc, rng, 300, &now)
	lost := map[int]bool{}
	for i := range 127 {
		lost[i] = true
	}
	if n := deliver(t, d, pkts, lost); n != 127 {
		t.Fatalf("rebuilt %d", n)
	}
}

func BenchmarkFECEncode(b *testing.B) {
	enc := newFECEncoder(10, 3, 0)
	pkt := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	now := uint32(0)
	for b.Loop() {
		now++
		enc.encode(pkt, now)
	}
}

func BenchmarkFECDecode(b *testing.B) {
	// 1500-byte datagrams, 10/3, one loss in 13 at random, like kcp-go's
	group := steadyGroup(b, 1500-fecHeaderSizePlus2)
	d := newFECDecoder(10, 3)
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	b.SetBytes(1500)
	for i := uint32(0); b.Loop(); i++ {
		if rng.IntN(13) == 0 {
			continue
		}
		p := group[i%13]
		binary.LittleEndian.PutUint32(p, i%d.paws)
		d.decode(p, 0)
	}
}

func TestFECRebuiltSizeChecked(t *testing.T) {
	// Corrupt the parity bytes that rebuild the lost shard's size field: every
	// outcome is either a size in [2, len] delivered, or an FEC error with
	// nothing delivered.
	enc := newFECEncoder(3, 2, 0)
	var pkts []fecPkt
	for i, n := range []int{40, 100, 70} {
		pkts = append(pkts, encodeOne(t, enc, katKCP(n, i), 1)...)
	}
	errs := 0
	for delta := 1; delta < 256; delta++ {
		d := newFECDecoder(3, 2)
		parity := bytes.Clone(pkts[3].b)
		parity[fecHeaderSize+1] ^= byte(delta)
		var out [][]byte
		for _, p := range [][]byte{pkts[1].b, pkts[2].b, parity} {
			out = append(out, feed(d, p)...)
		}
		st := d.stats.take()
		switch {
		case st.Errs == 1 && st.Recovered == 0 && len(out) == 0:
			errs++
		case st.Errs == 0 && st.Recovered == 1 && len(out) == 1 && len(out[0]) <= 100:
		default:
			t.Fatalf("delta %#x: stats %+v, %d delivered", delta, st, len(out))
		}
	}
	if errs == 0 {
		t.Fatal("no corrupted size was caught")
	}
}

func TestFECGauges(t *testing.T) {
	enc := newFECEncoder(3, 2, 0)
	d := newFECDecoder(3, 2)
	enc.next = 5 * 40
	rng := rand.New(rand.NewPCG(4, 4))
	now := uint32(0)
	for g := range 4 {
		for _, p := range encodeGroup(t, enc, rng, 100, &now) {
			d.decode(p.b, 0)
		}
		if d.stats.FullShardSet != uint64(g+1) {
			t.Fatalf("group %d: FullShardSet %d", g, d.stats.FullShardSet)
		}
	}
	// two groups left open: one data shard each
	for range 2 {
		pkts := encodeGroup(t, enc, rng, 100, &now)
		d.decode(pkts[0].b, 0)
	}
	st := d.stats.take()
	if st.ShardSet != 2 || st.ShardMin != 43 || st.ParityShards != 8 {
		t.Fatalf("stats %+v", st)
	}
	if again := d.stats.take(); again.ShardSet != 2 || again.FullShardSet != 0 {
		t.Fatalf("gauges must survive take, counters must not: %+v", again)
	}
}
