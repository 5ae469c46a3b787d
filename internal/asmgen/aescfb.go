//go:build ignore

// This program writes aescfb_amd64.s, the AES-NI code behind the kcp
// package's AES-CFB cipher (aescfb_amd64.go). Run it from the repository root:
//
//	go run internal/asmgen/aescfb.go -out aescfb_amd64.s
//
// CFB encryption is a chain: block i's cipher input is ciphertext block i-1,
// so one datagram keeps one AES unit busy for a round's latency at a time.
// AES-NI can start one or two rounds per cycle but each takes about four, so
// a single chain leaves most of the unit idle. The encryption kernels run the
// chains of several datagrams (lanes) in lockstep, one AESENC per lane per
// round, which fills the pipeline with independent work. CFB decryption has
// no chain (plaintext i = E(C[i-1]) XOR C[i]), so its kernel takes eight
// consecutive blocks of one datagram at once.
//
// Every kernel is generated from the same round sequence: whitening XOR with
// round key 0, AESENC with keys 1..rounds-1 in a counted loop (10, 12 or 14
// rounds for AES-128/192/256), AESENCLAST with the final key. The round keys
// are the FIPS-197 expansion laid out as AES-NI reads them (aescfb.go).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
)

type gen struct{ w *bufio.Writer }

func (g *gen) p(format string, args ...any) { fmt.Fprintf(g.w, format+"\n", args...) }

// rounds emits the AES rounds over the state registers X0..X(n-1), with the
// round keys at DI and the round count in CX. It uses X8 for the key (n <= 8)
// and R10/R11 as scratch; X8 ends holding the last round key.
func (g *gen) rounds(n int, label string) {
	g.p("\t// Whitening with round key 0.")
	g.p("\tMOVOU (DI), X8")
	for j := range n {
		g.p("\tPXOR X8, X%d", j)
	}
	g.p("\t// Rounds 1..rounds-1, one key load per round shared by every state.")
	g.p("\tLEAQ 16(DI), R10")
	g.p("\tLEAQ -1(CX), R11")
	g.p("%s:", label)
	g.p("\tMOVOU (R10), X8")
	for j := range n {
		g.p("\tAESENC X8, X%d", j)
	}
	g.p("\tADDQ $16, R10")
	g.p("\tDECQ R11")
	g.p("\tJNZ %s", label)
	g.p("\t// Final round.")
	g.p("\tMOVOU (R10), X8")
	for j := range n {
		g.p("\tAESENCLAST X8, X%d", j)
	}
}

// encLanes emits aesCFBEncLanes<n>: n CFB chains advanced in lockstep.
func (g *gen) encLanes(n int) {
	name := fmt.Sprintf("aesCFBEncLanes%d", n)
	g.p("// func %s(rk *byte, rounds int, lanes *[%d]cfbLane, blocks int)", name, n)
	g.p("//")
	g.p("// Lane j has dst and src pointers to the next block of its datagram; the")
	g.p("// ciphertext block before it (dst-16) is the chain's current cipher input.")
	g.p("// Each step, for every lane: C = E(C) XOR P, P read at src+off, C stored at")
	g.p("// dst+off. All plaintext loads of a step come before its stores, so a lane")
	g.p("// may repeat another lane (same pointers) to pad a kernel: both store the")
	g.p("// same bytes. blocks must be at least 1.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ rk+0(FP), DI")
	g.p("\tMOVQ rounds+8(FP), CX")
	g.p("\tMOVQ lanes+16(FP), SI")
	g.p("\tMOVQ blocks+24(FP), DX")
	g.p("\tXORQ AX, AX // byte offset of the current block in every lane")
	g.p("\t// Chain inputs: the ciphertext block before each lane's first block.")
	for j := range n {
		g.p("\tMOVQ %d(SI), R8", 16*j)
		g.p("\tMOVOU -16(R8), X%d", j)
	}
	g.p("%s_step:", name)
	g.rounds(n, name+"_round")
	g.p("\t// Load every lane's plaintext, then XOR and store.")
	for j := range n {
		g.p("\tMOVQ %d(SI), R9", 16*j+8)
		g.p("\tMOVOU (R9)(AX*1), X%d", 8+j)
	}
	for j := range n {
		g.p("\tPXOR X%d, X%d", 8+j, j)
	}
	for j := range n {
		g.p("\tMOVQ %d(SI), R8", 16*j)
		g.p("\tMOVOU X%d, (R8)(AX*1)", j)
	}
	g.p("\tADDQ $16, AX")
	g.p("\tDECQ DX")
	g.p("\tJNZ %s_step", name)
	g.p("\tRET")
	g.p("")
}

// dec emits aesCFBDec: CFB decryption of consecutive blocks, eight at a time.
func (g *gen) dec() {
	g.p("// func aesCFBDec(rk *byte, rounds int, dst, src *byte, blocks int)")
	g.p("//")
	g.p("// For i in [0, blocks): dst[16+16i:32+16i] = E(src[16i:16i+16]) XOR")
	g.p("// src[16+16i:32+16i]. dst and src may be equal: each group loads its cipher")
	g.p("// inputs before it stores, and the one input a group's stores overwrite")
	g.p("// (the last ciphertext block, the next group's first input) is carried in X9.")
	g.p("TEXT ·aesCFBDec(SB), NOSPLIT, $0-40")
	g.p("\tMOVQ rk+0(FP), DI")
	g.p("\tMOVQ rounds+8(FP), CX")
	g.p("\tMOVQ dst+16(FP), BX")
	g.p("\tMOVQ src+24(FP), SI")
	g.p("\tMOVQ blocks+32(FP), DX")
	g.p("\tADDQ $16, BX // output block i is at BX+16i")
	g.p("\tMOVOU (SI), X9 // carry: the cipher input of the next block")
	g.p("\tADDQ $16, SI // ciphertext block i+1, XORed into output i, at SI+16i")
	g.p("\tCMPQ DX, $8")
	g.p("\tJB dec_single")
	g.p("dec_eight:")
	g.p("\tMOVOU X9, X0")
	for j := 1; j < 8; j++ {
		g.p("\tMOVOU %d(SI), X%d", 16*(j-1), j)
	}
	g.rounds(8, "dec_eight_round")
	g.p("\t// XOR in the ciphertext and store; block 7's ciphertext is the carry.")
	for j := range 8 {
		if j == 7 {
			g.p("\tMOVOU %d(SI), X9", 16*j)
			g.p("\tPXOR X9, X7")
		} else {
			g.p("\tMOVOU %d(SI), X10", 16*j)
			g.p("\tPXOR X10, X%d", j)
		}
		g.p("\tMOVOU X%d, %d(BX)", j, 16*j)
	}
	g.p("\tADDQ $128, SI")
	g.p("\tADDQ $128, BX")
	g.p("\tSUBQ $8, DX")
	g.p("\tCMPQ DX, $8")
	g.p("\tJAE dec_eight")
	g.p("dec_single:")
	g.p("\tTESTQ DX, DX")
	g.p("\tJZ dec_done")
	g.p("dec_one:")
	g.p("\tMOVOU X9, X0")
	g.rounds(1, "dec_one_round")
	g.p("\tMOVOU (SI), X9")
	g.p("\tPXOR X9, X0")
	g.p("\tMOVOU X0, (BX)")
	g.p("\tADDQ $16, SI")
	g.p("\tADDQ $16, BX")
	g.p("\tDECQ DX")
	g.p("\tJNZ dec_one")
	g.p("dec_done:")
	g.p("\tRET")
	g.p("")
}

// roundsY is rounds on the YMM registers Y0..Y(n-1), each holding two
// independent blocks (VAES): the 128-bit round key is broadcast to both
// halves of Y8.
func (g *gen) roundsY(n int, label string) {
	g.p("\t// Whitening with round key 0, broadcast to both 128-bit lanes.")
	g.p("\tVBROADCASTI128 (DI), Y8")
	for j := range n {
		g.p("\tVPXOR Y8, Y%d, Y%d", j, j)
	}
	g.p("\tLEAQ 16(DI), R10")
	g.p("\tLEAQ -1(CX), R11")
	g.p("%s:", label)
	g.p("\tVBROADCASTI128 (R10), Y8")
	for j := range n {
		g.p("\tVAESENC Y8, Y%d, Y%d", j, j)
	}
	g.p("\tADDQ $16, R10")
	g.p("\tDECQ R11")
	g.p("\tJNZ %s", label)
	g.p("\tVBROADCASTI128 (R10), Y8")
	for j := range n {
		g.p("\tVAESENCLAST Y8, Y%d, Y%d", j, j)
	}
}

// encLanes16 emits aesCFBEncLanes16: sixteen chains, two per YMM register.
// AES-NI on XMM registers saturates at eight chains (four cycles of latency,
// two rounds started per cycle); VAES starts two rounds of two blocks each
// per cycle, so sixteen chains fill it.
func (g *gen) encLanes16() {
	name := "aesCFBEncLanes16"
	g.p("// func %s(rk *byte, rounds int, lanes *[16]cfbLane, blocks int)", name)
	g.p("//")
	g.p("// aesCFBEncLanes8 for sixteen lanes on VAES: lanes 2k and 2k+1 share Yk")
	g.p("// (low and high half). Requires AVX2 and VAES.")
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.p("\tMOVQ rk+0(FP), DI")
	g.p("\tMOVQ rounds+8(FP), CX")
	g.p("\tMOVQ lanes+16(FP), SI")
	g.p("\tMOVQ blocks+24(FP), DX")
	g.p("\tXORQ AX, AX // byte offset of the current block in every lane")
	g.p("\t// Chain inputs: the ciphertext block before each lane's first block.")
	for k := range 8 {
		g.p("\tMOVQ %d(SI), R8", 32*k)
		g.p("\tMOVQ %d(SI), R9", 32*k+16)
		g.p("\tVMOVDQU -16(R8), X%d", k)
		g.p("\tVINSERTI128 $1, -16(R9), Y%d, Y%d", k, k)
	}
	g.p("%s_step:", name)
	g.roundsY(8, name+"_round")
	g.p("\t// Load every lane's plaintext, then XOR and store.")
	for k := range 8 {
		g.p("\tMOVQ %d(SI), R8", 32*k+8)
		g.p("\tMOVQ %d(SI), R9", 32*k+24)
		g.p("\tVMOVDQU (R8)(AX*1), X%d", 8+k)
		g.p("\tVINSERTI128 $1, (R9)(AX*1), Y%d, Y%d", 8+k, 8+k)
	}
	for k := range 8 {
		g.p("\tVPXOR Y%d, Y%d, Y%d", 8+k, k, k)
	}
	for k := range 8 {
		g.p("\tMOVQ %d(SI), R8", 32*k)
		g.p("\tMOVQ %d(SI), R9", 32*k+16)
		g.p("\tVMOVDQU X%d, (R8)(AX*1)", k)
		g.p("\tVEXTRACTI128 $1, Y%d, (R9)(AX*1)", k)
	}
	g.p("\tADDQ $16, AX")
	g.p("\tDECQ DX")
	g.p("\tJNZ %s_step", name)
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// dec16 emits aesCFBDec16: aesCFBDec sixteen blocks at a time on VAES.
func (g *gen) dec16() {
	g.p("// func aesCFBDec16(rk *byte, rounds int, dst, src *byte, blocks int)")
	g.p("//")
	g.p("// aesCFBDec for a multiple of sixteen blocks, two per YMM register:")
	g.p("// Yk takes cipher inputs C[2k], C[2k+1] of the group and is XORed with")
	g.p("// C[2k+1], C[2k+2]. In place, a group's stores overwrite its successor's")
	g.p("// first input, which is carried in X9. Requires AVX2 and VAES.")
	g.p("TEXT ·aesCFBDec16(SB), NOSPLIT, $0-40")
	g.p("\tMOVQ rk+0(FP), DI")
	g.p("\tMOVQ rounds+8(FP), CX")
	g.p("\tMOVQ dst+16(FP), BX")
	g.p("\tMOVQ src+24(FP), SI")
	g.p("\tMOVQ blocks+32(FP), DX")
	g.p("\tADDQ $16, BX // output block i is at BX+16i")
	g.p("\tVMOVDQU (SI), X9 // carry: the group's first cipher input")
	g.p("dec16_group:")
	g.p("\tVINSERTI128 $1, 16(SI), Y9, Y0")
	for k := 1; k < 8; k++ {
		g.p("\tVMOVDQU %d(SI), Y%d", 32*k, k)
	}
	g.roundsY(8, "dec16_round")
	g.p("\t// XOR in the ciphertext and store; the last block's is the carry.")
	for k := range 8 {
		g.p("\tVMOVDQU %d(SI), Y10", 16+32*k)
		if k == 7 {
			g.p("\tVEXTRACTI128 $1, Y10, X9")
		}
		g.p("\tVPXOR Y10, Y%d, Y%d", k, k)
		g.p("\tVMOVDQU Y%d, %d(BX)", k, 32*k)
	}
	g.p("\tADDQ $256, SI")
	g.p("\tADDQ $256, BX")
	g.p("\tSUBQ $16, DX")
	g.p("\tJNZ dec16_group")
	g.p("\tVZEROUPPER")
	g.p("\tRET")
	g.p("")
}

// block emits aesEncBlock: one block, for the keystream of a partial last block.
func (g *gen) block() {
	g.p("// func aesEncBlock(rk *byte, rounds int, dst *[16]byte, src *byte)")
	g.p("//")
	g.p("// dst = E(src[0:16]).")
	g.p("TEXT ·aesEncBlock(SB), NOSPLIT, $0-32")
	g.p("\tMOVQ rk+0(FP), DI")
	g.p("\tMOVQ rounds+8(FP), CX")
	g.p("\tMOVQ dst+16(FP), BX")
	g.p("\tMOVQ src+24(FP), SI")
	g.p("\tMOVOU (SI), X0")
	g.rounds(1, "block_round")
	g.p("\tMOVOU X0, (BX)")
	g.p("\tRET")
}

func main() {
	out := flag.String("out", "aescfb_amd64.s", "output file")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	g := &gen{w: bufio.NewWriter(f)}
	g.p("// Code generated by internal/asmgen/aescfb.go. DO NOT EDIT.")
	g.p("")
	g.p("//go:build amd64 && !purego")
	g.p("")
	g.p("#include \"textflag.h\"")
	g.p("")
	for _, n := range []int{1, 2, 4, 8} {
		g.encLanes(n)
	}
	g.encLanes16()
	g.dec()
	g.dec16()
	g.block()
	if err := g.w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
