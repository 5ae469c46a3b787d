package kcp

// Reed-Solomon forward error correction, wire-compatible with kcp-go v5.
//
// Sender: every KCP datagram becomes a data shard (seqid | 0x00F1 | size |
// KCP bytes). After dataShards of them the encoder emits parityShards parity
// datagrams (seqid | 0x00F2 | parity). The shard a parity byte covers starts at
// the size field and is zero-padded to the longest shard of its group.
//
// Receiver: data shards go to KCP at once (the session does that); the
// decoder keeps copies of up to fecMaxGroups groups, and once a group holds
// dataShards shards with data missing it rebuilds the missing data shards.
// The decoder learns the peer's dataShards/parityShards from the pattern of
// data and parity seqids, so ends configured differently still recover.
//
// Neither side allocates per packet once warm: the encoder folds each data
// shard into its parity accumulators as it passes (EncodeIdx, no copy of the
// data), and the decoder rebuilds with the syndrome method below; both avoid
// reedsolomon's Encode and Reconstruct, which allocate on every call.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/reedsolomon"
)

const (
	fecHeaderSize      = 6                      // seqid u32 + type u16
	fecHeaderSizePlus2 = fecHeaderSize + 2      // + size u16 of a data shard
	typeData           = 0xf1                   // FEC data shard
	typeParity         = 0xf2                   // FEC parity shard
	typeOOB            = 0xf3                   // out-of-band datagram, outside KCP and FEC
	fecOOBHeaderSize   = fecHeaderSizePlus2 + 4 // OOB header: FEC header, size, conv u32
	fecOOBSeqid        = 0xffffffff             // seqid carried by every OOB datagram

	fecMaxGroups      = 3                       // groups a decoder holds at once
	fecMaxTotalShards = 255                     // largest dataShards+parityShards either end accepts
	fecParitySkipMs   = 500                     // parity is skipped when a group's last two data shards are this far apart
	fecMaxPacket      = 1500                    // longest FEC packet kept (equals the pool's mtuLimit)
	fecBlock          = 64                      // block size of reedsolomon's SIMD kernels
	fecShardCap       = fecMaxPacket + fecBlock // shard storage: a packet, rounded up to whole blocks

	// fecForeignBudget bounds the shard storage (bytes) of a decoder on a
	// session without FEC configured locally, which decodes only because
	// the peer sends FEC: enough for kcptun's 10/3 with full-size shards
	// (3 groups x 13 x 1,472 B, 56 KiB), while a peer inventing a layout of
	// 255 shards cannot make the session hold 1.1 MiB. A decoder whose layout
	// was configured holds at most fecMaxGroups x total x fecShardCap.
	fecForeignBudget = 64 << 10
)

// fecStats are the FEC counters of one encoder or decoder. Recovered, Errs,
// ParityShards, FullShardSet and Dropped count events since the last take and
// are meant to be added to Snmp (Dropped to InErrs). ShardSet and ShardMin are
// gauges of the decoder's current state, meant to be stored, not added.
type fecStats struct {
	Recovered    uint64 // data shards rebuilt and returned (Snmp.FECRecovered)
	Errs         uint64 // failed rebuilds, rebuilt shards with a bad size, encoder failures (Snmp.FECErrs)
	ParityShards uint64 // parity shards accepted (Snmp.FECParityShards)
	FullShardSet uint64 // groups completed with every data shard received (Snmp.FECFullShardSet)
	Dropped      uint64 // shards refused: malformed, beyond paws, or contradicting the peer's layout
	ShardSet     uint64 // gauge: groups held that are not complete (Snmp.FECShardSet)
	ShardMin     uint64 // gauge: lowest group id held (Snmp.FECShardMin)
}

// take returns the counters and zeroes the event counts; the gauges stay.
func (s *fecStats) take() fecStats {
	t := *s
	s.Recovered, s.Errs, s.ParityShards, s.FullShardSet, s.Dropped = 0, 0, 0, 0, 0
	return t
}

// fecPaws is the seqid wrap point for groups of total shards: the largest
// multiple of total not above 0xFFFFFFFF, so a group never straddles the wrap.
func fecPaws(total int) uint32 {
	return 0xffffffff / uint32(total) * uint32(total)
}

func validFECLayout(dataShards, parityShards int) bool {
	return dataShards > 0 && parityShards > 0 && dataShards+parityShards <= fecMaxTotalShards
}

// checkFECShards refuses shard counts that would otherwise be silent
// nonsense: a negative count, or a layout Reed-Solomon cannot code (more
// than 255 shards together; kcp-go's limit of 256 is cut by one so the
// receiver can infer the layout from sequence numbers). As in kcp-go, 0 data
// or 0 parity shards means FEC off and is no error.
func checkFECShards(dataShards, parityShards int) error {
	switch {
	case dataShards < 0 || parityShards < 0:
		return fmt.Errorf("kcp: FEC shard counts %d/%d: negative", dataShards, parityShards)
	case dataShards > 0 && parityShards > 0 && dataShards+parityShards > fecMaxTotalShards:
		return fmt.Errorf("kcp: FEC shard counts %d/%d: at most %d shards together", dataShards, parityShards, fecMaxTotalShards)
	}
	return nil
}

// fecEncoder numbers outgoing datagrams and produces parity. Not safe for
// concurrent use: the session's send path owns it.
type fecEncoder struct {
	dataShards   int
	parityShards int
	paws         uint32
	next         uint32 // seqid of the next shard; tests may set it to start near paws
	offset       int    // bytes left in front of the FEC header for the cipher

	codec reedsolomon.Encoder

	count  int    // data shards folded into the current group
	maxLen int    // longest shard of the current group, from the size field on
	dirty  int    // accumulator bytes to clear before the next group starts
	failed bool   // EncodeIdx refused a shard of the current group
	lastTs uint32 // ms clock of the previous data shard
	haveTs bool
	parity [][]byte // per parity shard: offset + header room, then the accumulator
	acc    [][]byte // views of the accumulators, rebuilt per shard for EncodeIdx
	out    [][]byte // parity datagrams returned by encode
	pad    []byte   // a shard padded to whole blocks

	stats fecStats
}

// newFECEncoder returns an encoder for groups of dataShards data and
// parityShards parity shards whose datagrams carry offset bytes of cipher
// header in front of the FEC header, or nil when the layout is not valid
// (either count <= 0, or more than 255 shards in all).
func newFECEncoder(dataShards, parityShards, offset int) *fecEncoder {
	if !validFECLayout(dataShards, parityShards) || offset < 0 {
		return nil
	}
	codec, err := reedsolomon.New(dataShards, parityShards)
	if err != nil {
		return nil
	}
	e := &fecEncoder{
		dataShards:   dataShards,
		parityShards: parityShards,
		paws:         fecPaws(dataShards + parityShards),
		offset:       offset,
		codec:        codec,
		parity:       make([][]byte, parityShards),
		acc:          make([][]byte, parityShards),
		out:          make([][]byte, parityShards),
		pad:          make([]byte, fecShardCap),
	}
	for k := range e.parity {
		e.parity[k] = make([]byte, offset+fecMaxPacket+fecBlock)
	}
	return e
}

func (e *fecEncoder) advance(n int) {
	e.next = uint32((uint64(e.next) + uint64(n)) % uint64(e.paws))
}

// encode turns b into a data shard and, when b completes a group, returns the
// group's parity datagrams.
//
// b is the whole datagram: offset bytes of room, 8 bytes of room for the FEC
// header, then the KCP bytes. encode writes seqid, type and size into
// b[offset:offset+8] and leaves the rest alone. Each returned datagram has
// offset bytes of room, then the FEC header and the parity bytes; they live in
// encoder memory, valid until the next call. now is the sender's ms clock: a
// group whose last two data shards are 500 ms or more apart gets no parity,
// though its parity seqids are still consumed so the groups stay aligned.
func (e *fecEncoder) encode(b []byte, now uint32) (parity [][]byte) {
	h := e.offset
	if len(b) < h+fecHeaderSizePlus2 || len(b)-h-fecHeaderSize > 0xffff {
		e.stats.Errs++
		return nil
	}
	shard := b[h+fecHeaderSize:]
	binary.LittleEndian.PutUint32(b[h:], e.next)
	binary.LittleEndian.PutUint16(b[h+4:], typeData)
	binary.LittleEndian.PutUint16(b[h+6:], uint16(len(shard)))
	e.advance(1)

	if e.count == 0 {
		for k := range e.parity {
			clear(e.parity[k][h+fecHeaderSize : h+fecHeaderSize+e.dirty])
		}
		e.dirty = 0
	}
	n := len(shard)
	// reedsolomon's SIMD kernels take 64-byte blocks and finish the rest byte
	// by byte, one parity row at a time; a copy padded with zeros to whole
	// blocks (which add nothing, as padding must not) costs less.
	padded := (n + fecBlock - 1) &^ (fecBlock - 1)
	e.grow(h + fecHeaderSize + padded)
	src := shard
	if padded != n {
		if len(e.pad) < padded {
			e.pad = make([]byte, padded)
		}
		src = e.pad[:padded]
		copy(src, shard)
		clear(src[n:])
	}
	if e.fold(src, h+fecHeaderSize) != nil {
		e.failed = true
	}
	e.count++
	e.maxLen = max(e.maxLen, n)
	e.dirty = e.maxLen

	continuous := e.haveTs && now-e.lastTs < fecParitySkipMs
	e.lastTs, e.haveTs = now, true
	if e.count < e.dataShards {
		return nil
	}

	send := continuous && !e.failed
	if e.failed {
		e.stats.Errs++
	}
	size := h + fecHeaderSize + e.maxLen
	e.count, e.maxLen, e.failed = 0, 0, false
	if !send {
		e.advance(e.parityShards)
		return nil
	}
	for k := range e.parity {
		p := e.parity[k][:size]
		binary.LittleEndian.PutUint32(p[h:], e.next)
		binary.LittleEndian.PutUint16(p[h+4:], typeParity)
		e.advance(1)
		e.out[k] = p
	}
	return e.out
}

// fold adds the contribution of data bytes at accumulator position at.
func (e *fecEncoder) fold(data []byte, at int) error {
	for k := range e.acc {
		e.acc[k] = e.parity[k][at : at+len(data)]
	}
	return e.codec.EncodeIdx(data, e.count, e.acc)
}

// grow makes every parity buffer at least n bytes long, keeping its contents.
// Datagrams come from mtuLimit-sized buffers, so this only runs for callers
// that pass something longer.
func (e *fecEncoder) grow(n int) {
	for k, p := range e.parity {
		if len(p) < n {
			q := make([]byte, n)
			copy(q, p)
			e.parity[k] = q
		}
	}
}

// putOOBHeader writes the header of an out-of-band datagram into b[0:12]:
// seqid 0xFFFFFFFF, type 0x00F3, size 6+payloadLen, conv. The payload follows
// at b[12:]. b must be at least 12 bytes long.
func putOOBHeader(b []byte, conv uint32, payloadLen int) {
	_ = b[fecOOBHeaderSize-1]
	binary.LittleEndian.PutUint32(b, fecOOBSeqid)
	binary.LittleEndian.PutUint16(b[4:], typeOOB)
	binary.LittleEndian.PutUint16(b[6:], uint16(fecOOBHeaderSize-fecHeaderSize+payloadLen))
	binary.LittleEndian.PutUint32(b[8:], conv)
}

// parseOOB reads an out-of-band datagram that starts at the seqid (after
// decryption): its conv and its payload (a subslice of pkt). ok is false when
// pkt is not a well-formed OOB datagram: too short, another type, or a size
// field outside [6, len(pkt)-6].
func parseOOB(pkt []byte) (conv uint32, payload []byte, ok bool) {
	if len(pkt) < fecOOBHeaderSize || binary.LittleEndian.Uint16(pkt[4:]) != typeOOB {
		return 0, nil, false
	}
	size := int(binary.LittleEndian.Uint16(pkt[6:]))
	if size < fecOOBHeaderSize-fecHeaderSize || fecHeaderSize+size > len(pkt) {
		return 0, nil, false
	}
	return binary.LittleEndian.Uint32(pkt[8:]), pkt[fecOOBHeaderSize : fecHeaderSize+size], true
}

// fecDataPayload returns the KCP bytes of a data shard that starts at the
// seqid: pkt[8:6+size]. ok is false when pkt is shorter than 8 bytes, is not
// of type 0x00F1, or its size field is outside [2, len(pkt)-6].
func fecDataPayload(pkt []byte) ([]byte, bool) {
	if len(pkt) < fecHeaderSizePlus2 || binary.LittleEndian.Uint16(pkt[4:]) != typeData {
		return nil, false
	}
	size := int(binary.LittleEndian.Uint16(pkt[6:]))
	if size < 2 || fecHeaderSize+size > len(pkt) {
		return nil, false
	}
	return pkt[fecHeaderSizePlus2 : fecHeaderSize+size], true
}

// fecGroup holds the shards received for one group.
type fecGroup struct {
	id     uint32 // seqid / (dataShards+parityShards)
	used   bool
	done   bool   // rebuilt, found complete, or failed: later shards are ignored
	last   uint64 // decoder tick of the last shard stored, for eviction
	count  int    // shards held
	data   int    // data shards held
	have   []bool
	shards [][]byte // storage per index, sized by the shards it held (whole fecBlocks); the held shard is shards[i][:len]
}

// fecDecoder stores received shards and rebuilds lost data shards. Not safe
// for concurrent use: the session's receive path owns it.
type fecDecoder struct {
	dataShards   int
	parityShards int
	total        int
	paws         uint32
	tuned        bool   // a layout is known, hinted or inferred
	suspect      bool   // a shard contradicted the layout: rebuild nothing until the tuner rules
	matrix       []byte // parity rows of the code: matrix[j*dataShards+i]
	codec        reedsolomon.Encoder

	groups [fecMaxGroups]fecGroup
	tick   uint64

	// rebuild scratch
	acc     [][]byte // parityShards buffers, made at the first rebuild, grown to the padded shard size
	accv    [][]byte // views of acc passed to EncodeIdx
	missing []int
	rows    []int
	gauss   []byte    // e x 2e augmented matrix for the inversion
	mulOut  [1][]byte // the parity argument of the multiplier's EncodeIdx
	out     [][]byte

	tuner *fecTuner // made at the first shard, so sessions without FEC pay nothing

	// budget bounds held, the bytes of shard and rebuild storage (cap of
	// every buffer): fecForeignBudget without a local layout, else 0 (no
	// bound beyond the layout's own). A shard that would need more is
	// dropped; a rebuild that would is given up.
	budget, held int

	stats fecStats
}

// newFECDecoder returns a decoder. dataShards and parityShards are hints: the
// layout the decoder assumes until the peer's shards show another one. With
// hints that are not a valid layout the decoder rebuilds nothing until it has
// inferred the peer's layout. Never nil.
func newFECDecoder(dataShards, parityShards int) *fecDecoder {
	d := &fecDecoder{}
	if validFECLayout(dataShards, parityShards) {
		d.setLayout(dataShards, parityShards)
	} else {
		d.budget = fecForeignBudget
	}
	return d
}

// room returns b, or a new zeroed buffer in its place, with capacity for n
// bytes rounded up to whole fecBlocks (the content is not kept), charging
// the growth to the budget; ok is false, and b is returned unchanged, when
// the budget cannot pay for it.
func (d *fecDecoder) room(b []byte, n int) ([]byte, bool) {
	if cap(b) >= n {
		return b, true
	}
	size := min((n+fecBlock-1)&^(fecBlock-1), fecShardCap)
	if size < n {
		return b, false
	}
	if d.budget > 0 && d.held-cap(b)+size > d.budget {
		return b, false
	}
	d.held += size - cap(b)
	return make([]byte, size), true
}

// setLayout switches to a layout and forgets every stored shard. It allocates
// the codec and the layout-sized tables, so it runs only when the layout
// changes.
func (d *fecDecoder) setLayout(dataShards, parityShards int) bool {
	codec, err := reedsolomon.New(dataShards, parityShards)
	if err != nil {
		return false
	}
	total := dataShards + parityShards
	// Read the code's parity rows by encoding the unit vectors: shard i is
	// e_i (one byte per column), so parity shard j, byte i, is row j, column i.
	unit := make([][]byte, total)
	for i := range unit {
		unit[i] = make([]byte, dataShards)
		if i < dataShards {
			unit[i][i] = 1
		}
	}
	if err := codec.Encode(unit); err != nil {
		return false
	}
	d.matrix = make([]byte, parityShards*dataShards)
	for j := range parityShards {
		copy(d.matrix[j*dataShards:], unit[dataShards+j])
	}
	d.codec = codec
	d.dataShards, d.parityShards, d.total = dataShards, parityShards, total
	d.paws = fecPaws(total)
	d.tuned = true
	d.suspect = false
	d.held = 0
	for i := range d.groups {
		g := &d.groups[i]
		old := g.shards
		*g = fecGroup{have: make([]bool, total), shards: make([][]byte, total)}
		// keep storage already paid for
		copy(g.shards, old)
		for _, b := range g.shards {
			d.held += cap(b)
		}
	}
	if len(d.acc) < parityShards {
		acc := make([][]byte, parityShards)
		copy(acc, d.acc)
		d.acc = acc
	}
	d.acc = d.acc[:parityShards]
	for _, b := range d.acc {
		d.held += cap(b)
	}
	d.accv = make([][]byte, parityShards)
	d.missing = make([]int, 0, parityShards)
	d.rows = make([]int, 0, parityShards)
	d.gauss = make([]byte, 2*parityShards*parityShards)
	d.out = make([][]byte, 0, dataShards)
	return true
}

// decode stores one FEC shard and returns the KCP bytes of every data shard
// it allowed to rebuild.
//
// pkt starts at the seqid (after decryption); it is copied, not kept. The
// returned slices are r[2:size] of each rebuilt shard r, with 2 <= size <=
// len(r) checked, and live in decoder memory, valid until the next call. The
// caller feeds a data shard's own KCP bytes (fecDataPayload) to KCP itself.
// Malformed, duplicate, stale or contradicting shards are counted and
// dropped; no input makes decode panic or stops later valid shards from
// being used. now is the receiver's ms clock; the current policy needs no
// time and ignores it.
func (d *fecDecoder) decode(pkt []byte, now uint32) (recovered [][]byte) {
	d.out = d.out[:0]
	if len(pkt) < fecHeaderSizePlus2 || len(pkt) > fecMaxPacket {
		d.stats.Dropped++
		return nil
	}
	seqid := binary.LittleEndian.Uint32(pkt)
	var isData bool
	switch binary.LittleEndian.Uint16(pkt[4:]) {
	case typeData:
		if _, ok := fecDataPayload(pkt); !ok {
			d.stats.Dropped++
			return nil
		}
		isData = true
	case typeParity:
	default:
		d.stats.Dropped++
		return nil
	}

	if d.tuner == nil {
		d.tuner = &fecTuner{every: 1}
	}
	d.tuner.add(seqid, isData)
	if (d.suspect || !d.tuned) && d.tuner.due() {
		d.retune()
	}
	if !d.tuned {
		return nil
	}
	if seqid >= d.paws {
		d.stats.Dropped++
		return nil
	}
	total := uint32(d.total)
	idx := int(seqid % total)
	if (idx < d.dataShards) != isData {
		d.stats.Dropped++
		if !d.suspect {
			d.suspect = true
			d.tuner.arm()
		}
		return nil
	}

	g := d.group(seqid / total)
	if g.have[idx] {
		return nil // a duplicate
	}
	if !isData {
		d.stats.ParityShards++
	}
	if g.done {
		g.have[idx] = true
	} else {
		d.tick++
		g.last = d.tick
		s, ok := d.room(g.shards[idx], len(pkt)-fecHeaderSize)
		if !ok {
			d.stats.Dropped++
			return nil
		}
		n := copy(s[:cap(s)], pkt[fecHeaderSize:])
		g.shards[idx] = s[:n]
		g.have[idx] = true
		g.count++
		if isData {
			g.data++
		}
		if !d.suspect {
			d.settle(g)
		}
	}
	d.gauges()
	return d.out
}

// group returns the slot holding group id, claiming one when none does. The
// victim is, in order of preference: a free slot, an incomplete group nothing
// was stored in for fecStaleGroups groups' worth of shards (abandoned, or
// forged), a complete group, and the group fed least recently.
func (d *fecDecoder) group(id uint32) *fecGroup {
	var victim *fecGroup
	vr := 0
	for i := range d.groups {
		g := &d.groups[i]
		if g.used && g.id == id {
			return g
		}
		if r := d.evictRank(g); victim == nil || r < vr || r == vr && g.last < victim.last {
			victim, vr = g, r
		}
	}
	victim.used, victim.done, victim.id = true, false, id
	victim.count, victim.data = 0, 0
	clear(victim.have)
	return victim
}

// fecStaleGroups is how many groups' worth of stored shards may pass before
// an incomplete group is given up.
const fecStaleGroups = 2 * fecMaxGroups

func (d *fecDecoder) evictRank(g *fecGroup) int {
	switch {
	case !g.used:
		return 0
	case !g.done && d.tick-g.last > uint64(fecStaleGroups*d.total):
		return 1
	case g.done:
		return 2
	}
	return 3
}

// settle finishes a group that holds dataShards shards: counts a complete
// one, rebuilds the missing data of an incomplete one.
func (d *fecDecoder) settle(g *fecGroup) {
	if g.done || g.count < d.dataShards {
		return
	}
	g.done = true
	if g.data == d.dataShards {
		d.stats.FullShardSet++
		return
	}
	if err := d.rebuild(g); err != nil {
		d.stats.Errs++
	}
}

var (
	errFECSingular = errors.New("kcp: fec: singular decode matrix")
	errFECBudget   = errors.New("kcp: fec: rebuild would exceed the decoder's memory budget")
)

// rebuild recovers the missing data shards of g without allocating.
//
// With E the missing data indices and J as many held parity indices, the
// code says p_j = sum_i M[j][i]*d_i. Encoding the held data shards alone
// (missing ones counted as zero) gives q_j; r_j = p_j ^ q_j is then
// sum_{i in E} M[j][i]*d_i, a square system in the missing shards, solved
// with the inverse of M[J][E]. The e x e inverse is found here in GF(2^8)
// (reedsolomon's field, polynomial 0x11D); every pass over shard bytes runs
// on reedsolomon's SIMD kernels through EncodeIdx.
func (d *fecDecoder) rebuild(g *fecGroup) error {
	mul := fecMultiplier()
	if mul == nil {
		return errFECSingular
	}
	ds := d.dataShards
	size := 0
	for i, ok := range g.have {
		if ok {
			size = max(size, len(g.shards[i]))
		}
	}
	// Work on whole 64-byte blocks; the padding is zero like the shards'.
	padded := (size + fecBlock - 1) &^ (fecBlock - 1)
	for i, ok := range g.have {
		if ok && len(g.shards[i]) < padded {
			n := len(g.shards[i])
			b, fits := d.room(g.shards[i], padded)
			if !fits {
				return errFECBudget
			}
			if cap(b) != cap(g.shards[i]) { // a new buffer: keep the shard
				copy(b, g.shards[i])
			}
			g.shards[i] = b[:padded]
			clear(g.shards[i][n:])
		}
	}
	d.missing, d.rows = d.missing[:0], d.rows[:0]
	for i := range ds {
		if !g.have[i] {
			d.missing = append(d.missing, i)
		}
	}
	for j := ds; j < d.total && len(d.rows) < len(d.missing); j++ {
		if g.have[j] {
			d.rows = append(d.rows, j)
		}
	}
	e := len(d.missing)
	if len(d.rows) < e {
		return errFECSingular
	}

	for k := range d.accv {
		b, fits := d.room(d.acc[k], padded)
		if !fits {
			return errFECBudget
		}
		d.acc[k] = b
		d.accv[k] = d.acc[k][:padded]
		clear(d.accv[k])
	}
	for i := range ds {
		if g.have[i] {
			if err := d.codec.EncodeIdx(g.shards[i], i, d.accv); err != nil {
				return err
			}
		}
	}
	for _, j := range d.rows {
		d.mulAdd(mul, d.accv[j-ds], g.shards[j], 1)
	}

	// Invert A = M[rows][missing] by Gauss-Jordan on [A | I].
	w := 2 * e
	m := d.gauss[:e*w]
	clear(m)
	for r, j := range d.rows {
		for c, i := range d.missing {
			m[r*w+c] = d.matrix[(j-ds)*ds+i]
		}
		m[r*w+e+r] = 1
	}
	for c := range e {
		p := -1
		for r := c; r < e; r++ {
			if m[r*w+c] != 0 {
				p = r
				break
			}
		}
		if p < 0 {
			return errFECSingular
		}
		if p != c {
			for k := range w {
				m[p*w+k], m[c*w+k] = m[c*w+k], m[p*w+k]
			}
		}
		if v := m[c*w+c]; v != 1 {
			inv := gfInv(v)
			for k := range w {
				m[c*w+k] = gfMul(m[c*w+k], inv)
			}
		}
		for r := range e {
			if f := m[r*w+c]; r != c && f != 0 {
				for k := range w {
					m[r*w+k] ^= gfMul(f, m[c*w+k])
				}
			}
		}
	}

	for l, i := range d.missing {
		dst, fits := d.room(g.shards[i], padded)
		if !fits {
			d.stats.Errs++
			continue
		}
		dst = dst[:padded]
		clear(dst)
		for k, j := range d.rows {
			d.mulAdd(mul, dst, d.accv[j-ds], m[l*w+e+k])
		}
		g.shards[i] = dst
		sz := int(binary.LittleEndian.Uint16(dst))
		if sz < 2 || sz > size {
			d.stats.Errs++
			continue
		}
		d.out = append(d.out, dst[2:sz])
		d.stats.Recovered++
	}
	return nil
}

// mulAdd sets dst ^= c*src in GF(2^8); len(src) >= len(dst).
func (d *fecDecoder) mulAdd(mul reedsolomon.Encoder, dst, src []byte, c byte) {
	if c == 0 {
		return
	}
	d.mulOut[0] = dst
	// cannot fail: one parity slice, index in range, equal lengths
	_ = mul.EncodeIdx(src[:len(dst)], int(c)-1, d.mulOut[:])
	d.mulOut[0] = nil
}

// fecMultiplier returns a codec whose only parity row is 1, 2, ..., 255, so
// that EncodeIdx of data index c-1 adds c times a slice to the parity slice:
// a multiply-add by any constant on reedsolomon's SIMD kernels, without
// allocating. Made once, on the first rebuild, and immutable after; nil if
// reedsolomon refuses it.
var fecMultiplier = sync.OnceValue(func() reedsolomon.Encoder {
	row := make([]byte, 255)
	for i := range row {
		row[i] = byte(i + 1)
	}
	mul, err := reedsolomon.New(len(row), 1, reedsolomon.WithCustomMatrix([][]byte{row}))
	if err != nil {
		return nil
	}
	return mul
})

// gauges refreshes ShardSet and ShardMin from the held groups.
func (d *fecDecoder) gauges() {
	var open uint64
	var lowest *fecGroup
	for i := range d.groups {
		g := &d.groups[i]
		if !g.used {
			continue
		}
		if !g.done {
			open++
		}
		if lowest == nil || int32(g.id-lowest.id) < 0 {
			lowest = g
		}
	}
	d.stats.ShardSet = open
	if lowest != nil {
		d.stats.ShardMin = uint64(lowest.id)
	}
}

// retune settles a suspicion. The current layout stays if the latest shards
// fit it (a lone bad shard is tolerated); otherwise the newest layout that
// two clean groups show and the latest shards fit takes over. A suspicion
// nothing settles for long is dropped, so no input stops recovery for good.
func (d *fecDecoder) retune() {
	if d.tuned && d.tuner.fits(d.dataShards, d.parityShards) {
		d.confirm()
		return
	}
	for _, l := range d.tuner.infer() {
		if !validFECLayout(l.ds, l.ps) || !d.tuner.fits(l.ds, l.ps) {
			continue
		}
		if d.tuned && l.ds == d.dataShards && l.ps == d.parityShards {
			d.confirm()
			return
		}
		if d.setLayout(l.ds, l.ps) {
			d.tuner.settled()
		}
		return
	}
	if d.tuned && d.tuner.expired() {
		d.confirm()
	}
}

// confirm ends a suspicion and settles the groups that filled up meanwhile.
func (d *fecDecoder) confirm() {
	d.tuner.settled()
	d.suspect = false
	for i := range d.groups {
		if g := &d.groups[i]; g.used {
			d.settle(g)
		}
	}
}

// GF(2^8) with reedsolomon's generating polynomial x^8+x^4+x^3+x^2+1.
var gfExp, gfLog = gfTables()

func gfTables() (exp [510]byte, log [256]byte) {
	x := 1
	for i := range 255 {
		exp[i] = byte(x)
		exp[i+255] = byte(x)
		log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	return exp, log
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

func gfInv(a byte) byte { return gfExp[255-int(gfLog[a])] }

// fecTuneSamples is how many recent shards the tuner remembers: enough for
// two whole groups of the largest layout, with the shard on each side.
const fecTuneSamples = 2*fecMaxTotalShards + 8

type fecSample struct {
	seq  uint32
	at   uint32 // arrival number
	rel  int32  // seq relative to the newest arrival, filled for sorting
	data bool
}

// fecLayoutSeen is one group whose layout the tuner could read.
type fecLayoutSeen struct {
	ds, ps int
	at     uint32 // arrival number of the group's first data shard
}

// fecTuner infers the peer's layout from which seqids carried data and which
// parity. A group shows its layout when its run of data shards has parity
// right before it and a run of parity right after it ended by data, all at
// consecutive seqids, and its first seqid is a multiple of the two runs'
// lengths summed. The layout that at least two groups show and that arrived
// last wins, so one forged or corrupt shard cannot invent a layout and old or
// far-away forgeries lose to the current traffic.
type fecTuner struct {
	ring    [fecTuneSamples]fecSample
	sorted  [fecTuneSamples]fecSample
	seen    [fecTuneSamples/2 + 1]fecLayoutSeen // a group needs two new samples at least
	layouts [fecTuneSamples/4 + 1]fecLayoutSeen
	n       int    // samples held
	pos     int    // next write position
	clock   uint32 // arrivals so far
	newest  uint32 // seqid of the last arrival

	since int // samples since the last attempt
	every int // samples between attempts; grows after each failure
	age   int // samples since the suspicion began
}

const (
	fecTuneEvery    = 8
	fecTuneMaxEvery = 16
)

func (t *fecTuner) add(seq uint32, data bool) {
	t.clock++
	t.ring[t.pos] = fecSample{seq: seq, at: t.clock, data: data}
	t.pos = (t.pos + 1) % fecTuneSamples
	t.n = min(t.n+1, fecTuneSamples)
	t.newest = seq
	t.since++
	t.age++
}

// arm starts a new suspicion: the next shard triggers an attempt.
func (t *fecTuner) arm() {
	t.since, t.every, t.age = 0, 1, 0
}

func (t *fecTuner) due() bool {
	if t.since < t.every {
		return false
	}
	t.since = 0
	t.every = min(max(t.every*2, fecTuneEvery), fecTuneMaxEvery)
	return true
}

func (t *fecTuner) settled() { t.every = fecTuneEvery }

// expired reports a suspicion that outlived the whole sample ring twice.
func (t *fecTuner) expired() bool { return t.age > 2*fecTuneSamples }

// infer returns the layouts that at least two groups in the samples show,
// the one seen last first. The slice is tuner memory.
func (t *fecTuner) infer() []fecLayoutSeen {
	s := t.sorted[:t.n]
	copy(s, t.ring[:t.n])
	for i := range s {
		s[i].rel = int32(s[i].seq - t.newest)
	}
	slices.SortFunc(s, func(a, b fecSample) int {
		if a.rel != b.rel {
			return int(a.rel) - int(b.rel)
		}
		return int(int32(a.at - b.at))
	})
	// A seqid heard twice keeps its latest arrival: samples left over from
	// an earlier stream or a replay must not break the current one's runs.
	k := 0
	for i := range s {
		if k > 0 && s[k-1].seq == s[i].seq {
			k--
		}
		s[k] = s[i]
		k++
	}
	s = s[:k]

	// Walk the runs of one type over consecutive seqids; a gap breaks the
	// chain. The last four runs are kept.
	type run struct {
		start uint32
		at    uint32
		n     int
		data  bool
	}
	var runs [4]run
	nr, nseen := 0, 0
	for i := range s {
		consecutive := i > 0 && s[i].seq == s[i-1].seq+1
		if consecutive && s[i].data == s[i-1].data {
			runs[nr-1].n++
			continue
		}
		if !consecutive {
			nr = 0
		} else if nr == len(runs) {
			copy(runs[:], runs[1:])
			nr--
		}
		runs[nr] = run{start: s[i].seq, at: s[i].at, n: 1, data: s[i].data}
		nr++
		// runs alternate in type, so data at 1 and 3 means parity, data, parity, data
		if nr == 4 && runs[1].data && runs[3].data && nseen < len(t.seen) {
			ds, ps := runs[1].n, runs[2].n
			if ds+ps <= fecMaxTotalShards && runs[1].start%uint32(ds+ps) == 0 {
				t.seen[nseen] = fecLayoutSeen{ds: ds, ps: ps, at: runs[1].at}
				nseen++
			}
		}
	}

	// Keep the layouts shown by two groups or more, newest first.
	nl := 0
	for i := range nseen {
		c := t.seen[i]
		votes, k := 0, 0
		for j := range nseen {
			if t.seen[j].ds == c.ds && t.seen[j].ps == c.ps {
				votes++
				if int32(t.seen[j].at-c.at) > 0 {
					c.at = t.seen[j].at
				}
			}
		}
		for k < nl && (t.layouts[k].ds != c.ds || t.layouts[k].ps != c.ps) {
			k++
		}
		if votes < 2 || k < nl {
			continue
		}
		t.layouts[nl] = c
		nl++
	}
	layouts := t.layouts[:nl]
	slices.SortFunc(layouts, func(a, b fecLayoutSeen) int { return int(int32(b.at - a.at)) })
	return layouts
}

// fits reports whether the latest arrivals agree with a layout: at least two
// groups' worth of them, and no more than one in 32 (at least one) with a type
// that contradicts its position.
func (t *fecTuner) fits(dataShards, parityShards int) bool {
	total := dataShards + parityShards
	k := min(t.n, 4*total)
	if k < 2*total {
		return false
	}
	paws := fecPaws(total)
	bad := 0
	for i := range k {
		s := t.ring[(t.pos-1-i+fecTuneSamples)%fecTuneSamples]
		if s.seq >= paws || (int(s.seq%uint32(total)) < dataShards) != s.data {
			bad++
		}
	}
	return bad <= max(1, k/32)
}
