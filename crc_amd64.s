//go:build amd64 && !purego

#include "textflag.h"

// PSHUFB masks for a final partial block of t bytes (1..15): 16 bytes from
// offset t shift a register up by 16-t bytes (zero fill), 16 bytes from
// offset 16+t shift it down by t bytes (zero fill). 0x80 selects zero.
DATA crcTailShuf<>+0(SB)/8, $0x8080808080808080
DATA crcTailShuf<>+8(SB)/8, $0x8080808080808080
DATA crcTailShuf<>+16(SB)/8, $0x0706050403020100
DATA crcTailShuf<>+24(SB)/8, $0x0f0e0d0c0b0a0908
DATA crcTailShuf<>+32(SB)/8, $0x8080808080808080
DATA crcTailShuf<>+40(SB)/8, $0x8080808080808080
GLOBL crcTailShuf<>(SB), RODATA|NOPTR, $48

// func crc32FoldAVX512(state uint32, p *byte, n int, k *[11][2]uint64) uint32
//
// Returns the bit-reflected CRC-32 state after n bytes of p (n at least 256)
// from the given state (XORed into the first four bytes), without the final
// inversion. The whole 16-byte blocks are folded down to 128 bits congruent to
// them modulo the polynomial; a partial last block of t bytes is folded in by
// treating the value and the t bytes as a 16+t byte message: its first t bytes
// (zero-extended in front) fold by 128 bits onto its last 16. The 128 bits are
// then reduced to 32 (fold by x^96 and x^64, then Barrett reduction). k is crcFoldK (crc.go): each
// 16-byte entry is a (lo, hi) pair of constants. A fold of a 128-bit
// lane X into Y is Y ^= clmul(X.lo, k.lo) ^ clmul(X.hi, k.hi); a 512-bit
// register holds four such lanes, earliest bytes in lane 0.
TEXT ·crc32FoldAVX512(SB), NOSPLIT, $0-36
	MOVL state+0(FP), AX
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), DX
	LEAQ (SI)(CX*1), R8 // end of the input
	MOVQ CX, R9
	ANDQ $15, R9 // t: bytes of the partial last block
	ANDQ $-16, CX // bytes in whole blocks

	// The first 256 bytes, with the state XORed into bytes 0..3.
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VMOVD AX, X4 // zeroes the rest of Z4
	VPXORQ Z4, Z0, Z0
	ADDQ $256, SI
	SUBQ $256, CX

	// Main loop: each register folds 2048 bits forward onto the next 256 bytes.
	VBROADCASTI32X4 0(DX), Z8
loop256:
	CMPQ CX, $256
	JB fold4
	VMOVDQU64 (SI), Z12
	VMOVDQU64 64(SI), Z13
	VMOVDQU64 128(SI), Z14
	VMOVDQU64 192(SI), Z15
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPCLMULQDQ $0x00, Z8, Z1, Z5
	VPCLMULQDQ $0x11, Z8, Z1, Z1
	VPCLMULQDQ $0x00, Z8, Z2, Z6
	VPCLMULQDQ $0x11, Z8, Z2, Z2
	VPCLMULQDQ $0x00, Z8, Z3, Z7
	VPCLMULQDQ $0x11, Z8, Z3, Z3
	VPTERNLOGD $0x96, Z4, Z12, Z0 // Z0 ^= Z4 ^ Z12
	VPTERNLOGD $0x96, Z5, Z13, Z1
	VPTERNLOGD $0x96, Z6, Z14, Z2
	VPTERNLOGD $0x96, Z7, Z15, Z3
	ADDQ $256, SI
	SUBQ $256, CX
	JMP loop256

fold4:
	// Four registers into Z3: Z0 by 1536 bits, Z1 by 1024, Z2 by 512.
	VBROADCASTI32X4 16(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z5
	VPTERNLOGD $0x96, Z4, Z5, Z3
	VBROADCASTI32X4 32(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z1, Z4
	VPCLMULQDQ $0x11, Z8, Z1, Z5
	VPTERNLOGD $0x96, Z4, Z5, Z3
	VBROADCASTI32X4 48(DX), Z8 // 512 bits: also the 64-byte loop's constant
	VPCLMULQDQ $0x00, Z8, Z2, Z4
	VPCLMULQDQ $0x11, Z8, Z2, Z5
	VPTERNLOGD $0x96, Z4, Z5, Z3

loop64:
	CMPQ CX, $64
	JB lanes
	VMOVDQU64 (SI), Z12
	VPCLMULQDQ $0x00, Z8, Z3, Z4
	VPCLMULQDQ $0x11, Z8, Z3, Z3
	VPTERNLOGD $0x96, Z4, Z12, Z3
	ADDQ $64, SI
	SUBQ $64, CX
	JMP loop64

lanes:
	// The four lanes of Z3 into one: lanes 0..2 by 384, 256 and 128 bits
	// (lane 3's constants are zero), then XOR with lane 3 as it is.
	VMOVDQU64 64(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z3, Z4
	VPCLMULQDQ $0x11, Z8, Z3, Z5
	VPXORQ Z5, Z4, Z4
	VEXTRACTI32X4 $1, Z4, X1
	VEXTRACTI32X4 $2, Z4, X2
	VEXTRACTI32X4 $3, Z3, X0
	VPTERNLOGD $0x96, X1, X2, X0
	VPXOR X4, X0, X0

	// Up to three 16-byte blocks left: fold by 128 bits onto each.
	VMOVDQU 128(DX), X8
loop16:
	CMPQ CX, $16
	JB partial
	VMOVDQU (SI), X12
	VPCLMULQDQ $0x00, X8, X0, X4
	VPCLMULQDQ $0x11, X8, X0, X0
	VPTERNLOGD $0x96, X4, X12, X0
	ADDQ $16, SI
	SUBQ $16, CX
	JMP loop16

	// The partial last block, if any: with R the 128 bits so far and T
	// the t bytes, H = R[0:t] moved to the top (zeros before it) folds by
	// 128 bits onto L = R[t:16] ++ T, whose T part is the input's last 16
	// bytes' top t bytes.
partial:
	TESTQ R9, R9
	JZ reduce
	LEAQ crcTailShuf<>(SB), R10
	VMOVDQU (R10)(R9*1), X5 // shift up by 16-t; top bit set where i < 16-t
	VMOVDQU 16(R10)(R9*1), X6 // shift down by t
	VPSHUFB X6, X0, X6 // R[t:16] in bytes 0..15-t
	VPSHUFB X5, X0, X0 // H in bytes 16-t..15
	VMOVDQU -16(R8), X7 // the input's last 16 bytes, T in bytes 16-t..15
	VPBLENDVB X5, X6, X7, X1 // L: X6 (R shifted down) where the mask's top bit is set (i < 16-t), else X7 (T)
	VPCLMULQDQ $0x00, X8, X0, X4
	VPCLMULQDQ $0x11, X8, X0, X0
	VPTERNLOGD $0x96, X4, X1, X0

reduce:
	// 128 bits to the 32-bit CRC state. X3 masks the low 32 bits.
	MOVL $0xffffffff, AX
	VMOVD AX, X3
	VMOVDQU 144(DX), X8 // lo: x^96 fold, hi: x^64 fold
	// R1 = (R >> 64) ^ R.lo * x^96: 96 bits.
	VPCLMULQDQ $0x00, X8, X0, X1
	VPSRLDQ $8, X0, X0
	VPXOR X1, X0, X0
	// R2 = (R1 >> 32) ^ (R1 & mask) * x^64: 64 bits.
	VPSRLDQ $4, X0, X2
	VPAND X3, X0, X1
	VPCLMULQDQ $0x10, X8, X1, X1
	VPXOR X2, X1, X0
	// Barrett reduction: T1 = (R2 & mask) * mu, T2 = (T1 & mask) * P,
	// and the state is bits 32..63 of R2 ^ T2.
	VMOVDQU 160(DX), X8 // lo: P, hi: mu (both reflected, 33 bits)
	VPAND X3, X0, X1
	VPCLMULQDQ $0x10, X8, X1, X1
	VPAND X3, X1, X1
	VPCLMULQDQ $0x00, X8, X1, X1
	VPXOR X0, X1, X1
	VPEXTRD $1, X1, AX
	MOVL AX, ret+32(FP)
	VZEROUPPER
	RET
