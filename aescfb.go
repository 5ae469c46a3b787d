package kcp

import "encoding/binary"

// The AES key schedule of FIPS-197 section 5.2, for the AES-NI code in
// aescfb_amd64.s. crypto/aes keeps its own expanded keys private, so the
// assembly needs one of its own; tests check its output against crypto/aes
// for random keys of every size.

// aesMaxRounds is AES-256's round count; AES-128 has 10, AES-192 12.
const aesMaxRounds = 14

// aesSbox is the AES S-box (FIPS-197 section 5.1.1): the multiplicative
// inverse in GF(2^8) followed by the affine transformation. It is computed
// once rather than written out, by walking the field's multiplicative group
// with the generator 3: x runs through 3^k while inv runs through 3^-k.
var aesSbox = func() (s [256]byte) {
	x, inv := byte(1), byte(1)
	for {
		// x *= 3: x ^ xtime(x).
		x ^= x<<1 ^ byte(int8(x)>>7)&0x1b
		// inv /= 3: multiplying by 1+x undoes multiplying by 3; the three
		// shifted XORs multiply by (1+x)(1+x^2)(1+x^4), and the fix-up folds
		// the overflowing top bit back modulo the AES polynomial.
		inv ^= inv << 1
		inv ^= inv << 2
		inv ^= inv << 4
		if inv&0x80 != 0 {
			inv ^= 0x09
		}
		// Affine map: b ^ rotl(b,1) ^ rotl(b,2) ^ rotl(b,3) ^ rotl(b,4) ^ 0x63.
		a := inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4)
		s[x] = a ^ 0x63
		if x == 1 {
			break
		}
	}
	s[0] = 0x63 // 0 has no inverse; FIPS-197 maps it as if it were 0
	return s
}()

func rotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }

// aesSubWord applies the S-box to each byte of w.
func aesSubWord(w uint32) uint32 {
	return uint32(aesSbox[w>>24])<<24 | uint32(aesSbox[w>>16&0xff])<<16 |
		uint32(aesSbox[w>>8&0xff])<<8 | uint32(aesSbox[w&0xff])
}

// aesExpandKey writes the encryption round keys for key (16, 24 or 32 bytes)
// into rk, round key r at rk[16r:16r+16] in FIPS-197 byte order (each word
// w[i] big-endian), which is how AESENC reads its key operand. It returns the
// number of rounds, or 0 for any other key length.
func aesExpandKey(key []byte, rk *[16 * (aesMaxRounds + 1)]byte) int {
	nk := len(key) / 4
	if len(key) != 16 && len(key) != 24 && len(key) != 32 {
		return 0
	}
	rounds := nk + 6
	var w [4 * (aesMaxRounds + 1)]uint32
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := nk; i < 4*(rounds+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = aesSubWord(t<<8|t>>24) ^ rcon<<24
			rcon <<= 1
			if rcon&0x100 != 0 {
				rcon ^= 0x11b // xtime in GF(2^8)
			}
		case nk > 6 && i%nk == 4:
			t = aesSubWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	for i := range 4 * (rounds + 1) {
		binary.BigEndian.PutUint32(rk[4*i:], w[i])
	}
	return rounds
}
