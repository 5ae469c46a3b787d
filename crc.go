package kcp

// Constants for folding a CRC-32 (IEEE, bit-reflected) forward with
// carry-less multiplication, for crc_amd64.s. Folding a 128-bit value X by D
// bits (making it congruent, modulo the CRC polynomial, to X placed D bits
// later in the message) is clmul(X.lo, x^(D+32) mod P) XOR clmul(X.hi,
// x^(D-32) mod P), with each constant bit-reflected and shifted left by one
// to suit the reflected bit order. The constants are computed here from the
// polynomial rather than written out; a test checks the 128- and 512-bit ones
// against hash/crc32's own.

// crcPolyNormal is the IEEE CRC-32 polynomial with its x^32 term, in normal
// (not reflected) bit order.
const crcPolyNormal = 0x104c11db7

// crcFoldConst returns reflect32(x^e mod P) << 1.
func crcFoldConst(e int) uint64 {
	r := uint64(1)
	for range e {
		r <<= 1
		if r&(1<<32) != 0 {
			r ^= crcPolyNormal
		}
	}
	var rev uint64
	for i := range 32 {
		if r&(1<<i) != 0 {
			rev |= 1 << (31 - i)
		}
	}
	return rev << 1
}

// crcFoldPair returns the (lo, hi) constants that fold a 128-bit value by d
// bits; d == 0 gives zeros (a lane the final fold drops and XORs in as is).
func crcFoldPair(d int) [2]uint64 {
	if d == 0 {
		return [2]uint64{}
	}
	return [2]uint64{crcFoldConst(d + 32), crcFoldConst(d - 32)}
}

// crcFoldK is the table crc_amd64.s reads: folds by 2048 bits (four 512-bit
// registers, the main loop), 1536, 1024 and 512 bits (four registers into one,
// and the 64-byte loop), one per 128-bit lane of the last register (384, 256,
// 128 and none), 128 bits (the 16-byte loop); then the final reduction's
// x^96 and x^64 folds, and the polynomial and Barrett's mu = x^64 / P, both
// bit-reflected over 33 bits.
var crcFoldK = func() (k [11][2]uint64) {
	for i, d := range []int{2048, 1536, 1024, 512, 384, 256, 128, 0, 128} {
		k[i] = crcFoldPair(d)
	}
	k[9] = [2]uint64{crcFoldConst(96), crcFoldConst(64)}
	k[10] = [2]uint64{reflect33(crcPolyNormal), reflect33(crcBarrettMu())}
	return k
}()

// reflect33 reverses the low 33 bits of v.
func reflect33(v uint64) uint64 {
	var r uint64
	for i := range 33 {
		if v&(1<<i) != 0 {
			r |= 1 << (32 - i)
		}
	}
	return r
}

// crcBarrettMu returns floor(x^64 / P) over GF(2), by long division.
func crcBarrettMu() uint64 {
	var q uint64
	rem := uint64(0) // the 33 bits of the dividend under the divisor
	for d := 64; d >= 0; d-- {
		rem <<= 1
		if d == 64 {
			rem |= 1 // x^64 is the only set bit of the dividend
		}
		if rem&(1<<32) != 0 && d <= 32 {
			q |= 1 << d
			rem ^= crcPolyNormal
		}
	}
	return q
}
