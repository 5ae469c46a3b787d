//go:build ignore

// This program writes salsa20_amd64.s, the AVX2 Salsa20/20 keystream XOR used
// by the kcp package. Run it from the repository root:
//
//	go run internal/asmgen/salsa20.go -out salsa20_amd64.s
//
// Layout: eight blocks at once, bit-sliced by state word. YMM register i holds
// one state word for eight consecutive block counters, one per 32-bit lane, so
// a quarter-round step is five plain vector instructions with no shuffles.
//
// Sixteen state words plus two scratch registers do not fit in the sixteen YMM
// registers, so the generator keeps fourteen words in registers and the rest in
// stack slots, choosing at every step which word to push out by looking ahead
// in the (fixed) instruction sequence for the one needed furthest in the future.
// A source word that lives on the stack is read as a memory operand, so only a
// destination word ever has to be brought back. The 20 rounds are unrolled so
// that the register assignment need not return to a fixed state after each
// double round.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
)

const (
	words     = 16
	stateRegs = 14 // Y0..Y13 hold state words; Y14 and Y15 are scratch
	doubles   = 10 // Salsa20/20: ten double rounds

	// Offsets from the 32-byte aligned scratch base in R10.
	offInit = 0    // 16 x 32 bytes: the input state of the current batch
	offWork = 512  // 16 x 32 bytes: spill slots, then the finished state
	offKey  = 1024 // 512 bytes: keystream of a short final batch
	scratch = 1536
	frame   = scratch + 32 // room to round the base up to 32 bytes
)

// step is one ARX operation of the Salsa20 core: x[t] ^= (x[a] + x[b]) <<< rot.
type step struct{ t, a, b, rot int }

// quarter returns the four steps of a quarter-round on words (y0, y1, y2, y3),
// in the order of the Salsa20 specification.
func quarter(y0, y1, y2, y3 int) [4]step {
	return [4]step{
		{y1, y0, y3, 7},
		{y2, y1, y0, 9},
		{y3, y2, y1, 13},
		{y0, y3, y2, 18},
	}
}

// program lists every step of the 20 rounds. The four independent quarter-rounds
// of a round are interleaved step by step so that neighbouring instructions do
// not depend on each other.
func program() []step {
	columns := [4][4]step{quarter(0, 4, 8, 12), quarter(5, 9, 13, 1), quarter(10, 14, 2, 6), quarter(15, 3, 7, 11)}
	rows := [4][4]step{quarter(0, 1, 2, 3), quarter(5, 6, 7, 4), quarter(10, 11, 8, 9), quarter(15, 12, 13, 14)}
	var p []step
	for range doubles {
		for _, round := range [2][4][4]step{columns, rows} {
			for k := range 4 {
				for q := range 4 {
					p = append(p, round[q][k])
				}
			}
		}
	}
	return p
}

type gen struct {
	w *bufio.Writer

	prog  []step
	reg   [words]int     // register holding each word, or -1 if it is in its slot
	owner [stateRegs]int // word held by each register, or -1
	dirty [words]bool    // register copy is newer than the stack slot
}

func (g *gen) f(format string, args ...any) { fmt.Fprintf(g.w, format+"\n", args...) }
func (g *gen) i(format string, args ...any) { g.f("\t"+format, args...) }

func initSlot(w int) string { return fmt.Sprintf("%d(R10)", offInit+32*w) }
func workSlot(w int) string { return fmt.Sprintf("%d(R10)", offWork+32*w) }
func y(r int) string        { return fmt.Sprintf("Y%d", r) }

// nextUse returns the index of the first step at or after pos that reads or
// writes word w; the final feed-forward counts as a use of every word.
func (g *gen) nextUse(w, pos int) int {
	for i := pos; i < len(g.prog); i++ {
		s := g.prog[i]
		if s.t == w || s.a == w || s.b == w {
			return i
		}
	}
	return len(g.prog)
}

// loadBatch fills the registers with the fourteen words needed first and
// copies the other two into their stack slots.
func (g *gen) loadBatch() {
	for w := range words {
		g.reg[w] = -1
	}
	for r := range stateRegs {
		g.owner[r] = -1
	}
	order := make([]int, 0, words)
	for w := range words {
		order = append(order, w)
	}
	// Sort by first use (insertion sort; sixteen entries).
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && g.nextUse(order[j], 0) < g.nextUse(order[j-1], 0); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for k, w := range order {
		if k < stateRegs {
			g.reg[w], g.owner[k], g.dirty[w] = k, w, true
			g.i("VMOVDQU %s, %s", initSlot(w), y(k))
		} else {
			g.i("VMOVDQU %s, Y14", initSlot(w))
			g.i("VMOVDQU Y14, %s", workSlot(w))
			g.dirty[w] = false
		}
	}
}

// victim picks the register whose word is needed furthest in the future,
// returning it and that word's next use.
func (g *gen) victim(pos int) (r, next int) {
	r, next = -1, -1
	for k := range stateRegs {
		if g.owner[k] < 0 {
			return k, len(g.prog) + 1
		}
		if n := g.nextUse(g.owner[k], pos); n > next {
			r, next = k, n
		}
	}
	return r, next
}

func (g *gen) emitStep(pos int) {
	s := g.prog[pos]
	ra, rb := g.reg[s.a], g.reg[s.b]
	g.f("\t// x%d ^= (x%d + x%d) <<< %d", s.t, s.a, s.b, s.rot)
	switch {
	case ra >= 0 && rb >= 0:
		g.i("VPADDD %s, %s, Y14", y(rb), y(ra))
	case ra >= 0:
		g.i("VPADDD %s, %s, Y14", workSlot(s.b), y(ra))
	case rb >= 0:
		g.i("VPADDD %s, %s, Y14", workSlot(s.a), y(rb))
	default:
		g.i("VMOVDQU %s, Y14", workSlot(s.a))
		g.i("VPADDD %s, Y14, Y14", workSlot(s.b))
	}
	g.i("VPSLLD $%d, Y14, Y15", s.rot)
	g.i("VPSRLD $%d, Y14, Y14", 32-s.rot)

	if rt := g.reg[s.t]; rt >= 0 {
		g.i("VPXOR Y15, %s, %s", y(rt), y(rt))
		g.i("VPXOR Y14, %s, %s", y(rt), y(rt))
		g.dirty[s.t] = true
		return
	}
	r, next := g.victim(pos + 1)
	if g.nextUse(s.t, pos+1) >= next {
		// The result is needed later than anything in a register: leave it
		// in its slot.
		g.i("VPXOR %s, Y15, Y15", workSlot(s.t))
		g.i("VPXOR Y14, Y15, Y15")
		g.i("VMOVDQU Y15, %s", workSlot(s.t))
		return
	}
	if w := g.owner[r]; w >= 0 {
		if g.dirty[w] {
			g.i("VMOVDQU %s, %s", y(r), workSlot(w))
		}
		g.reg[w], g.dirty[w] = -1, false
	}
	g.i("VPXOR %s, Y15, %s", workSlot(s.t), y(r))
	g.i("VPXOR Y14, %s, %s", y(r), y(r))
	g.reg[s.t], g.owner[r], g.dirty[s.t] = r, s.t, true
}

// feedForward adds the input state to the permuted state and leaves all
// sixteen sums in the work slots.
func (g *gen) feedForward() {
	for w := range words {
		if r := g.reg[w]; r >= 0 {
			g.i("VPADDD %s, %s, %s", initSlot(w), y(r), y(r))
			g.i("VMOVDQU %s, %s", y(r), workSlot(w))
		} else {
			g.i("VMOVDQU %s, Y14", workSlot(w))
			g.i("VPADDD %s, Y14, Y14", initSlot(w))
			g.i("VMOVDQU Y14, %s", workSlot(w))
		}
	}
}

// transpose turns words 8*half .. 8*half+7 of the eight blocks (one word per
// register, one block per lane) into the matching 32 bytes of each block:
// block j ends up in Y(8+j).
func (g *gen) transpose(half int) {
	for k := range 8 {
		g.i("VMOVDQU %s, Y%d", workSlot(8*half+k), k)
	}
	// Interleave pairs of words: 32-bit, then 64-bit, then 128-bit halves.
	for k := 0; k < 8; k += 2 {
		g.i("VPUNPCKLDQ Y%d, Y%d, Y%d", k+1, k, 8+k)
		g.i("VPUNPCKHDQ Y%d, Y%d, Y%d", k+1, k, 9+k)
	}
	for k := 0; k < 8; k += 4 {
		g.i("VPUNPCKLQDQ Y%d, Y%d, Y%d", 10+k, 8+k, k)
		g.i("VPUNPCKHQDQ Y%d, Y%d, Y%d", 10+k, 8+k, k+1)
		g.i("VPUNPCKLQDQ Y%d, Y%d, Y%d", 11+k, 9+k, k+2)
		g.i("VPUNPCKHQDQ Y%d, Y%d, Y%d", 11+k, 9+k, k+3)
	}
	for k := range 4 {
		g.i("VPERM2I128 $0x20, Y%d, Y%d, Y%d", 4+k, k, 8+k)
		g.i("VPERM2I128 $0x31, Y%d, Y%d, Y%d", 4+k, k, 12+k)
	}
}

func (g *gen) file() {
	g.f("// Code generated by internal/asmgen/salsa20.go. DO NOT EDIT.")
	g.f("")
	g.f("//go:build amd64 && !purego")
	g.f("")
	g.f(`#include "textflag.h"`)
	g.f("")
	g.f("// Lane offsets added to the block counter, and the same offsets with the")
	g.f("// sign bit flipped for the unsigned carry comparison.")
	for k := range 8 {
		g.f("DATA salsaLanes<>+%d(SB)/4, $%d", 4*k, k)
	}
	g.f("GLOBL salsaLanes<>(SB), RODATA|NOPTR, $32")
	for k := range 8 {
		g.f("DATA salsaLanesBiased<>+%d(SB)/4, $0x%08x", 4*k, 0x80000000+k)
	}
	g.f("GLOBL salsaLanesBiased<>(SB), RODATA|NOPTR, $32")
	g.f("DATA salsaSignBit<>+0(SB)/4, $0x80000000")
	g.f("GLOBL salsaSignBit<>(SB), RODATA|NOPTR, $4")
	g.f("")
	g.f(`// "expand 32-byte k"`)
	for k, c := range []uint32{0x61707865, 0x3320646e, 0x79622d32, 0x6b206574} {
		g.f("DATA salsaSigma<>+%d(SB)/4, $0x%08x", 4*k, c)
	}
	g.f("GLOBL salsaSigma<>(SB), RODATA|NOPTR, $16")
	g.f("")
	g.f("// func salsa20XORKeyStreamAVX2(dst, src *byte, n int, key *[32]byte, nonce *[8]byte, counter uint64)")
	g.f("// Requires AVX2 and n > 0.")
	g.f("TEXT ·salsa20XORKeyStreamAVX2(SB), 0, $%d-48", frame)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ src+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.i("MOVQ key+24(FP), DX")
	g.i("MOVQ nonce+32(FP), R8")
	g.i("MOVQ counter+40(FP), R9")
	g.i("LEAQ 31(SP), R10")
	g.i("ANDQ $~31, R10")
	g.f("")
	g.f("\t// Words that are the same in every block and every batch.")
	sigma := map[int]int{0: 0, 5: 4, 10: 8, 15: 12}
	for w := range words {
		switch {
		case w == 8 || w == 9:
			continue // the counter, set per batch
		case w == 6 || w == 7:
			g.i("VPBROADCASTD %d(R8), Y0", 4*(w-6))
		case w >= 1 && w <= 4:
			g.i("VPBROADCASTD %d(DX), Y0", 4*(w-1))
		case w >= 11 && w <= 14:
			g.i("VPBROADCASTD %d(DX), Y0", 16+4*(w-11))
		default:
			g.i("VPBROADCASTD salsaSigma<>+%d(SB), Y0", sigma[w])
		}
		g.i("VMOVDQU Y0, %s", initSlot(w))
	}
	g.f("")
	g.f("batch:")
	g.f("\t// Words 8 and 9: the 64-bit counter plus the lane number. The low word")
	g.f("\t// wrapped where low+lane < lane (unsigned; AVX2 only compares signed,")
	g.f("\t// so both sides get their sign bit flipped), and the compare's all-ones")
	g.f("\t// result is subtracted from the high word to carry one into it.")
	g.i("VMOVQ R9, X14")
	g.i("VPBROADCASTD X14, Y15")
	g.i("VPADDD salsaLanes<>(SB), Y15, Y15")
	g.i("VPSRLQ $32, X14, X14")
	g.i("VPBROADCASTD X14, Y14")
	g.i("VMOVDQU Y15, %s", initSlot(8))
	g.i("VPBROADCASTD salsaSignBit<>(SB), Y13")
	g.i("VPXOR Y13, Y15, Y15")
	g.i("VMOVDQU salsaLanesBiased<>(SB), Y13")
	g.i("VPCMPGTD Y15, Y13, Y15")
	g.i("VPSUBD Y15, Y14, Y14")
	g.i("VMOVDQU Y14, %s", initSlot(9))
	g.f("")
	g.loadBatch()
	g.f("")
	for pos := range g.prog {
		if pos%32 == 0 {
			g.f("\t// Double round %d.", pos/32+1)
		}
		g.emitStep(pos)
	}
	g.f("")
	g.feedForward()
	g.f("")
	g.i("CMPQ CX, $512")
	g.i("JB partial")
	for half := range 2 {
		g.transpose(half)
		for j := range 8 {
			off := 64*j + 32*half
			g.i("VPXOR %d(SI), Y%d, Y%d", off, 8+j, 8+j)
			g.i("VMOVDQU Y%d, %d(DI)", 8+j, off)
		}
	}
	g.i("ADDQ $512, SI")
	g.i("ADDQ $512, DI")
	g.i("ADDQ $8, R9")
	g.i("SUBQ $512, CX")
	g.i("JNZ batch")
	g.i("VZEROUPPER")
	g.i("RET")
	g.f("")
	g.f("partial:")
	g.f("\t// Fewer than 512 bytes left: keep the keystream and use what is needed.")
	for half := range 2 {
		g.transpose(half)
		for j := range 8 {
			g.i("VMOVDQU Y%d, %d(R10)", 8+j, offKey+64*j+32*half)
		}
	}
	g.i("XORQ BX, BX")
	g.f("partial32:")
	g.i("CMPQ CX, $32")
	g.i("JB partial8")
	g.i("VMOVDQU (SI)(BX*1), Y0")
	g.i("VPXOR %d(R10)(BX*1), Y0, Y0", offKey)
	g.i("VMOVDQU Y0, (DI)(BX*1)")
	g.i("ADDQ $32, BX")
	g.i("SUBQ $32, CX")
	g.i("JMP partial32")
	g.f("partial8:")
	g.i("CMPQ CX, $8")
	g.i("JB partial1")
	g.i("MOVQ (SI)(BX*1), R11")
	g.i("XORQ %d(R10)(BX*1), R11", offKey)
	g.i("MOVQ R11, (DI)(BX*1)")
	g.i("ADDQ $8, BX")
	g.i("SUBQ $8, CX")
	g.i("JMP partial8")
	g.f("partial1:")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.i("MOVB (SI)(BX*1), R11")
	g.i("XORB %d(R10)(BX*1), R11", offKey)
	g.i("MOVB R11, (DI)(BX*1)")
	g.i("INCQ BX")
	g.i("DECQ CX")
	g.i("JMP partial1")
	g.f("done:")
	g.i("VZEROUPPER")
	g.i("RET")
}

func main() {
	out := flag.String("out", "salsa20_amd64.s", "output file")
	flag.Parse()
	fh, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	g := &gen{w: bufio.NewWriter(fh), prog: program()}
	g.file()
	if err := g.w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		log.Fatal(err)
	}
}
