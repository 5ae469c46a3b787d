package kcp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/emmansun/gmsm/sm4"
	"golang.org/x/crypto/blowfish"
	"golang.org/x/crypto/cast5"
	"golang.org/x/crypto/tea"
	"golang.org/x/crypto/twofish"
	"golang.org/x/crypto/xtea"
)

// Packet encryption (SPEC section 4).
//
// Non-AEAD datagram:  nonce[16] | crc32[4] | payload   (all of it encrypted)
// AEAD datagram:      nonce[NonceSize] | sealed payload | tag[Overhead]
//
// The CFB family runs standard full-block CFB over the whole datagram, nonce
// included, under a fixed IV; the random nonce in the first block is what makes
// every ciphertext differ. Block ciphers are shared by all sessions of a
// listener, so every transform here works in the caller's buffer and on the
// goroutine's stack, with no scratch memory in the cipher object.

const (
	cfbNonceSize = 16                     // random bytes opening a non-AEAD datagram
	crcSize      = 4                      // CRC32-IEEE of the payload, after the nonce
	cryptHeader  = cfbNonceSize + crcSize // header of every non-AEAD datagram
	xorSalt      = "sH3CIVoF#rWLtJo6"     // PBKDF2 salt of the simple XOR pad
	xorRounds    = 32                     // PBKDF2 iterations of the simple XOR pad
	teaRounds    = 16                     // kcp-go runs TEA with 16 rounds, not 64
	salsaNonce   = 8                      // Salsa20 nonce, left in clear
	salsaKeySize = 32                     // Salsa20 key; shorter keys are zero padded
	cfbMaxBlock  = 16                     // largest block size among the CFB ciphers
	xorPadSize   = maxDatagram            // length of the simple XOR pad (kcp-go v5.7)
)

// cfbIV is the fixed CFB initial vector shared with kcp-go. Ciphers with 8-byte
// blocks use its first 8 bytes.
var cfbIV = [16]byte{0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01, 0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b}

// errCorrupt reports a datagram that is too short, fails its checksum, or fails
// AEAD authentication. Sessions drop it and count InCsumErrors.
var errCorrupt = errors.New("kcp: corrupt or unauthenticated packet")

// BlockCrypt encrypts and decrypts whole datagrams in place. kcpx sessions call
// Encrypt on every outgoing datagram after writing a random nonce and a CRC32 into
// its first 20 bytes, and Decrypt on every incoming one before checking them.
// Implementations must be safe for concurrent use: a listener shares one value
// between all its sessions. Every BlockCrypt returned by this package is.
type BlockCrypt interface {
	// Encrypt encrypts src into dst. dst and src may be the same slice.
	Encrypt(dst, src []byte)

	// Decrypt decrypts src into dst. dst and src may be the same slice.
	Decrypt(dst, src []byte)
}

// ---------------------------------------------------------------------------
// CFB block ciphers

// cfbCrypt runs CFB over a cipher.Block with 8- or 16-byte blocks. Its fields are
// read-only after construction, so one value serves any number of goroutines.
type cfbCrypt struct {
	block cipher.Block
	size  int      // block size: 8 or 16
	word  int      // widest store the cipher makes: 16 (AES assembly), 8 (DES), 4 (others)
	first [16]byte // E(IV): the keystream of block 0, the same for every datagram
}

// Store widths matter because encryption is a chain through memory: the cipher
// reads the ciphertext block just written, and the XOR reads the keystream the
// cipher just wrote. A load is forwarded from a pending store only when it lies
// inside that one store; a load spanning two stores waits for both to reach the
// cache, on every block. So each encryption loop reads the keystream in words no
// wider than the cipher's own stores.
const (
	wordAES    = 16 // crypto/aes assembly: 16-byte loads and stores
	wordDES    = 8  // crypto/des: 64-bit loads and stores
	wordNarrow = 4  // the x/crypto and gmsm Go ciphers: 32-bit loads and stores
)

func newCFBCrypt(block cipher.Block, word int) BlockCrypt {
	c := &cfbCrypt{block: block, size: block.BlockSize(), word: word}
	block.Encrypt(c.first[:c.size], cfbIV[:c.size])
	return c
}

// Encrypt CFB-encrypts min(len(dst), len(src)) bytes of src into dst under the
// fixed IV. dst and src may be the same slice but must not otherwise overlap. It
// is safe for concurrent use and does not allocate.
func (c *cfbCrypt) Encrypt(dst, src []byte) {
	n := min(len(dst), len(src))
	switch {
	case c.word == wordNarrow:
		cfbEncrypt32(c.block, c.size, &c.first, dst[:n], src[:n])
	case c.size == 16:
		cfbEncrypt16(c.block, &c.first, dst[:n], src[:n])
	default:
		cfbEncrypt8(c.block, &c.first, dst[:n], src[:n])
	}
}

// Decrypt CFB-decrypts min(len(dst), len(src)) bytes of src into dst under the
// fixed IV. dst and src may be the same slice but must not otherwise overlap. It
// is safe for concurrent use and does not allocate.
func (c *cfbCrypt) Decrypt(dst, src []byte) {
	n := min(len(dst), len(src))
	if c.size == 16 {
		cfbDecrypt16(c.block, &c.first, dst[:n], src[:n])
	} else {
		cfbDecrypt8(c.block, &c.first, dst[:n], src[:n])
	}
}

// The CFB loops below need somewhere to put each keystream block. A local array
// passed to cipher.Block.Encrypt (an interface call) would escape to the heap,
// and a buffer in the cipher object would be shared by concurrent sessions
// (kcp-go's #183). So the keystream is written straight into the datagram:
//
//   - encrypting block i: its plaintext is first loaded into registers, then
//     E(C[i-1]) is written over block i and the plaintext XORed back in;
//   - decrypting, blocks are walked from last to first, so C[i-1] is still
//     intact when E(C[i-1]) is written over block i;
//   - the partial last block borrows the full block two places before it (saved
//     in registers and restored), because E's output must not overlap its input.
//
// Only a datagram of one full block plus a partial one (17..31 bytes with 16-byte
// blocks, 9..15 with 8-byte ones) has no such spare block; it takes a scratch
// block from a pool.

var scratchPool = sync.Pool{New: func() any { return new([cfbMaxBlock]byte) }}

func le64(b []byte) uint64     { return binary.LittleEndian.Uint64(b) }
func le32(b []byte) uint32     { return binary.LittleEndian.Uint32(b) }
func put32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }
func put64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// xorTail sets dst[i] = src[i] ^ ks[i] for i < len(dst) (len(dst) < block size).
func xorTail(dst, src, ks []byte) {
	for i := range dst {
		dst[i] = src[i] ^ ks[i]
	}
}

// tailKeystream computes E(buf[last:last+size]) for the partial block that
// follows it and XORs it into dst[tail:] from src[tail:]. buf is the slice that
// holds the ciphertext (dst when encrypting, src when decrypting).
func cfbTail(b cipher.Block, size int, dst, src, buf []byte, last int) {
	tail := last + size
	if last >= size {
		// Borrow the block before the last full block of dst.
		w := dst[last-size : last]
		var s0, s1 uint64
		s0 = le64(w)
		if size == 16 {
			s1 = le64(w[8:])
		}
		b.Encrypt(w, buf[last:tail])
		xorTail(dst[tail:], src[tail:], w)
		put64(w, s0)
		if size == 16 {
			put64(w[8:], s1)
		}
		return
	}
	s := scratchPool.Get().(*[cfbMaxBlock]byte)
	b.Encrypt(s[:size], buf[last:tail])
	xorTail(dst[tail:], src[tail:], s[:])
	scratchPool.Put(s)
}

func cfbEncrypt16(b cipher.Block, first *[16]byte, dst, src []byte) {
	n := len(src)
	if n < 16 {
		xorTail(dst, src, first[:])
		return
	}
	// Each ciphertext block is the next block's cipher input. It is written
	// with one 16-byte store (subtle.XORBytes) rather than two 8-byte ones, so
	// the cipher's 16-byte load of it is served by store forwarding instead of
	// stalling on every block of the chain.
	subtle.XORBytes(dst[:16], src[:16], first[:])
	var p [16]byte // plaintext of the block being encrypted (stays on the stack)
	off := 16
	for ; off+16 <= n; off += 16 {
		d := dst[off : off+16]
		p = [16]byte(src[off : off+16])
		b.Encrypt(d, dst[off-16:off])
		subtle.XORBytes(d, d, p[:])
	}
	if off < n {
		cfbTail(b, 16, dst, src, dst, off-16)
	}
}

// cfbDecrypt16 walks the blocks from last to first. Block i's keystream is
// XORed in one iteration after the cipher wrote it, so the load does not wait
// for the cipher's (often narrower) stores to drain; the next cipher call runs
// meanwhile, as decryption has no chain.
func cfbDecrypt16(b cipher.Block, first *[16]byte, dst, src []byte) {
	n := len(src)
	if n < 16 {
		xorTail(dst, src, first[:])
		return
	}
	full := n &^ 15
	if full < n {
		cfbTail(b, 16, dst, src, src, full-16)
	}
	pend := -1 // block whose keystream is in dst, awaiting its ciphertext
	var q0, q1 uint64
	for off := full - 16; off >= 16; off -= 16 {
		s := src[off : off+16]
		c0, c1 := le64(s), le64(s[8:])
		b.Encrypt(dst[off:off+16], src[off-16:off])
		if pend >= 0 {
			d := dst[pend : pend+16]
			put64(d, le64(d)^q0)
			put64(d[8:], le64(d[8:])^q1)
		}
		pend, q0, q1 = off, c0, c1
	}
	if pend >= 0 {
		d := dst[pend : pend+16]
		put64(d, le64(d)^q0)
		put64(d[8:], le64(d[8:])^q1)
	}
	put64(dst, le64(src)^le64(first[:]))
	put64(dst[8:], le64(src[8:])^le64(first[8:]))
}

// cfbEncrypt32 encrypts with ciphers that store 32-bit words, block size 8 or 16.
func cfbEncrypt32(b cipher.Block, size int, first *[16]byte, dst, src []byte) {
	n := len(src)
	if n < size {
		xorTail(dst, src, first[:])
		return
	}
	words := size / 4
	for w := range words {
		put32(dst[4*w:], le32(src[4*w:])^le32(first[4*w:]))
	}
	var p [4]uint32 // plaintext of the block being encrypted
	off := size
	for ; off+size <= n; off += size {
		d, s := dst[off:off+size], src[off:off+size]
		for w := range words {
			p[w] = le32(s[4*w:])
		}
		b.Encrypt(d, dst[off-size:off])
		for w := range words {
			put32(d[4*w:], le32(d[4*w:])^p[w])
		}
	}
	if off < n {
		cfbTail(b, size, dst, src, dst, off-size)
	}
}

func cfbEncrypt8(b cipher.Block, first *[16]byte, dst, src []byte) {
	n := len(src)
	if n < 8 {
		xorTail(dst, src, first[:])
		return
	}
	put64(dst, le64(src)^le64(first[:]))
	off := 8
	for ; off+8 <= n; off += 8 {
		d := dst[off : off+8]
		p := le64(src[off : off+8])
		b.Encrypt(d, dst[off-8:off])
		put64(d, le64(d)^p)
	}
	if off < n {
		cfbTail(b, 8, dst, src, dst, off-8)
	}
}

// cfbDecrypt8 is cfbDecrypt16 for 8-byte blocks.
func cfbDecrypt8(b cipher.Block, first *[16]byte, dst, src []byte) {
	n := len(src)
	if n < 8 {
		xorTail(dst, src, first[:])
		return
	}
	full := n &^ 7
	if full < n {
		cfbTail(b, 8, dst, src, src, full-8)
	}
	pend := -1
	var q uint64
	for off := full - 8; off >= 8; off -= 8 {
		c := le64(src[off : off+8])
		b.Encrypt(dst[off:off+8], src[off-8:off])
		if pend >= 0 {
			put64(dst[pend:pend+8], le64(dst[pend:pend+8])^q)
		}
		pend, q = off, c
	}
	if pend >= 0 {
		put64(dst[pend:pend+8], le64(dst[pend:pend+8])^q)
	}
	put64(dst, le64(src)^le64(first[:]))
}

// NewAESBlockCrypt returns AES in CFB mode. key must be 16, 24 or 32 bytes
// (AES-128, AES-192, AES-256); any other length is an error.
func NewAESBlockCrypt(key []byte) (BlockCrypt, error) {
	if c := newAESCFB(key); c != nil {
		return c, nil // AES-NI assembly (aescfb_amd64.go)
	}
	return newCFBFrom(wordAES, "AES", "16, 24 or 32", key)(aes.NewCipher(key))
}

// NewSM4BlockCrypt returns SM4 (GB/T 32907-2016) in CFB mode. key must be 16
// bytes.
func NewSM4BlockCrypt(key []byte) (BlockCrypt, error) {
	return newCFBFrom(wordNarrow, "SM4", "16", key)(sm4.NewCipher(key))
}

// NewTwofishBlockCrypt returns Twofish in CFB mode. key must be 16, 24 or 32
// bytes.
func NewTwofishBlockCrypt(key []byte) (BlockCrypt, error) {
	return newCFBFrom(wordNarrow, "Twofish", "16, 24 or 32", key)(twofish.NewCipher(key))
}

// NewTripleDESBlockCrypt returns 3DES (EDE, three keys) in CFB mode with 8-byte
// blocks. key must be 24 bytes.
func NewTripleDESBlockCrypt(key []byte) (BlockCrypt, error) {
	return newCFBFrom(wordDES, "3DES", "24", key)(des.NewTripleDESCipher(key))
}

// NewCast5BlockCrypt returns CAST-128 in CFB mode with 8-byte blocks. key must be
// 16 bytes.
func NewCast5BlockCrypt(key []byte) (BlockCrypt, error) {
	c, err := cast5.NewCipher(key)
	if err != nil {
		return nil, keySizeError("CAST5", "16", key, err)
	}
	return newCFBCrypt(c, wordNarrow), nil
}

// NewBlowfishBlockCrypt returns Blowfish in CFB mode with 8-byte blocks. key must
// be 1 to 56 bytes.
func NewBlowfishBlockCrypt(key []byte) (BlockCrypt, error) {
	c, err := blowfish.NewCipher(key)
	if err != nil {
		return nil, keySizeError("Blowfish", "1 to 56", key, err)
	}
	return newCFBCrypt(c, wordNarrow), nil
}

// NewTEABlockCrypt returns TEA with 16 rounds (as kcp-go, not TEA's usual 64) in
// CFB mode with 8-byte blocks. key must be 16 bytes.
func NewTEABlockCrypt(key []byte) (BlockCrypt, error) {
	return newCFBFrom(wordNarrow, "TEA", "16", key)(tea.NewCipherWithRounds(key, teaRounds))
}

// NewXTEABlockCrypt returns XTEA in CFB mode with 8-byte blocks. key must be 16
// bytes.
func NewXTEABlockCrypt(key []byte) (BlockCrypt, error) {
	c, err := xtea.NewCipher(key)
	if err != nil {
		return nil, keySizeError("XTEA", "16", key, err)
	}
	return newCFBCrypt(c, wordNarrow), nil
}

// newCFBFrom adapts a cipher constructor's (block, error) result; its error
// (the only one these constructors return is a key of the wrong length)
// becomes a KeySizeError naming the cipher and the valid lengths.
func newCFBFrom(word int, name, valid string, key []byte) func(cipher.Block, error) (BlockCrypt, error) {
	return func(block cipher.Block, err error) (BlockCrypt, error) {
		if err != nil {
			return nil, keySizeError(name, valid, key, err)
		}
		return newCFBCrypt(block, word), nil
	}
}

// keySizeError reports that the cipher name refused key (err says why); valid
// lists the lengths it takes.
func keySizeError(name, valid string, key []byte, err error) error {
	return &KeySizeError{Cipher: name, Len: len(key), Valid: valid, Err: err}
}

// ---------------------------------------------------------------------------
// Salsa20, XOR, none

type salsa20Crypt struct {
	key [salsaKeySize]byte
}

// NewSalsa20BlockCrypt returns Salsa20/20. The first 8 bytes of each datagram are
// its nonce and stay in clear; the rest is XORed with the keystream starting at
// block counter 0. key may have any length: it is zero padded or cut to 32 bytes.
// It never returns an error.
func NewSalsa20BlockCrypt(key []byte) (BlockCrypt, error) {
	c := new(salsa20Crypt)
	copy(c.key[:], key)
	return c, nil
}

// Encrypt processes min(len(dst), len(src)) bytes; a datagram shorter than the
// 8-byte nonce is copied unchanged. It is safe for concurrent use.
func (c *salsa20Crypt) Encrypt(dst, src []byte) { c.xor(dst, src) }

// Decrypt is the same transform as Encrypt.
func (c *salsa20Crypt) Decrypt(dst, src []byte) { c.xor(dst, src) }

func (c *salsa20Crypt) xor(dst, src []byte) {
	n := min(len(dst), len(src))
	if n <= salsaNonce {
		copy(dst[:n], src[:n])
		return
	}
	salsa20XOR(dst[salsaNonce:n], src[salsaNonce:n], (*[salsaNonce]byte)(src), &c.key)
	copy(dst[:salsaNonce], src[:salsaNonce])
}

type simpleXORCrypt struct {
	pad []byte // xorPadSize bytes, read-only
}

// NewSimpleXORBlockCrypt returns a cipher that XORs every datagram, from byte 0,
// with one fixed 1472-byte pad derived from key by PBKDF2-HMAC-SHA1 (32
// iterations, kcp-go's salt), the largest datagram a session sends. The
// pad is kcp-go v5.7's; v5.6 used 1500 bytes, whose first 1472 are the same,
// so only datagrams above 1472 bytes (which kcpx never sends) differ. It is obfuscation, not encryption. key may have any
// length. The error is non-nil only when the platform refuses PBKDF2 (FIPS-only
// mode with a short key).
func NewSimpleXORBlockCrypt(key []byte) (BlockCrypt, error) {
	pad, err := pbkdf2.Key(sha1.New, string(key), []byte(xorSalt), xorRounds, xorPadSize)
	if err != nil {
		return nil, err
	}
	return &simpleXORCrypt{pad: pad}, nil
}

// Encrypt XORs the first min(len(dst), len(src), 1472) bytes with the pad; bytes
// past 1472 are copied unchanged. It is safe for concurrent use.
func (c *simpleXORCrypt) Encrypt(dst, src []byte) { c.xor(dst, src) }

// Decrypt is the same transform as Encrypt.
func (c *simpleXORCrypt) Decrypt(dst, src []byte) { c.xor(dst, src) }

func (c *simpleXORCrypt) xor(dst, src []byte) {
	n := min(len(dst), len(src))
	if n <= len(c.pad) { // always, for datagrams of kcpx and kcp-go
		subtle.XORBytes(dst[:n], src[:n], c.pad)
		return
	}
	subtle.XORBytes(dst, src, c.pad)
	copy(dst[len(c.pad):n], src[len(c.pad):n])
}

type noneCrypt struct{}

// NewNoneBlockCrypt returns a BlockCrypt that leaves data unchanged. Sessions
// using it still send the 20-byte nonce and CRC32 header (unlike a nil
// BlockCrypt, which sends raw KCP), so the CRC still catches corruption. key is
// ignored and the error is always nil.
func NewNoneBlockCrypt(key []byte) (BlockCrypt, error) {
	return noneCrypt{}, nil
}

// Encrypt copies min(len(dst), len(src)) bytes of src into dst.
func (noneCrypt) Encrypt(dst, src []byte) { copy(dst, src[:min(len(dst), len(src))]) }

// Decrypt copies min(len(dst), len(src)) bytes of src into dst.
func (noneCrypt) Decrypt(dst, src []byte) { copy(dst, src[:min(len(dst), len(src))]) }

// ---------------------------------------------------------------------------
// AEAD

// aeadPacketCipher is implemented by BlockCrypt values that seal whole datagrams
// with an AEAD instead of transforming them in place; packetCrypter detects it.
type aeadPacketCipher interface {
	packetAEAD() cipher.AEAD
}

// aeadCrypt carries a cipher.AEAD through the BlockCrypt-typed API.
type aeadCrypt struct {
	aead cipher.AEAD
}

func (a *aeadCrypt) packetAEAD() cipher.AEAD { return a.aead }

// Encrypt cannot encrypt: an AEAD's output is longer than its input and needs a
// nonce, which the in-place BlockCrypt contract has no room for. Sessions never
// call it (they seal datagrams through the AEAD). A direct call fails closed: it
// overwrites dst with zeros, so misuse can never put plaintext on the wire.
func (a *aeadCrypt) Encrypt(dst, src []byte) { clear(dst[:min(len(dst), len(src))]) }

// Decrypt cannot decrypt, for the reason given on Encrypt. A direct call
// overwrites dst with zeros, which fails any checksum a caller applies.
func (a *aeadCrypt) Decrypt(dst, src []byte) { clear(dst[:min(len(dst), len(src))]) }

// NewAEADCrypt wraps aead for use as a session's cipher: each datagram is sent as
// a random nonce (aead.NonceSize() bytes), then the sealed payload with its tag
// (aead.Overhead() bytes) at the end, with no additional data and no CRC32. The
// result's Encrypt and Decrypt methods cannot be used directly (see aeadCrypt);
// pass it to Dial/Listen/ServeConn. As in kcp-go, a nil aead gives a nil
// BlockCrypt, which means no encryption at all.
func NewAEADCrypt(aead cipher.AEAD) BlockCrypt {
	if aead == nil {
		return nil
	}
	return &aeadCrypt{aead: aead}
}

// NewAESGCMCrypt returns AES-GCM with a 12-byte random nonce and a 16-byte tag as
// an AEAD BlockCrypt (see NewAEADCrypt). key must be 16, 24 or 32 bytes
// (AES-128, AES-192, AES-256).
func NewAESGCMCrypt(key []byte) (BlockCrypt, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, keySizeError("AES-GCM", "16, 24 or 32", key, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &aeadCrypt{aead: gcm}, nil
}

// ---------------------------------------------------------------------------
// Packet framing

// packetCrypter seals and opens datagrams for one session or listener. It is
// immutable after construction and safe for concurrent use.
type packetCrypter struct {
	block BlockCrypt     // in-place cipher (CFB family, Salsa20, XOR, none, custom); nil otherwise
	batch batchEncrypter // block, when it encrypts whole batches faster than one by one
	aead  cipher.AEAD    // set for AEAD ciphers
	hdr   int            // bytes in front of the payload
	tag   int            // AEAD tag bytes after the payload
}

// newPacketCrypter returns the framing for block. A nil block means raw KCP: no
// header, no transform.
func newPacketCrypter(block BlockCrypt) *packetCrypter {
	c := new(packetCrypter)
	switch b := block.(type) {
	case nil:
	case aeadPacketCipher:
		c.aead = b.packetAEAD()
		c.hdr = c.aead.NonceSize()
		c.tag = c.aead.Overhead()
	default:
		c.block = b
		c.batch, _ = b.(batchEncrypter)
		c.hdr = cryptHeader
	}
	return c
}

// batchEncrypter is implemented by in-place ciphers that encrypt several
// datagrams faster together than one at a time (AES-CFB in assembly runs
// up to eight CFB chains at once on AES-NI, sixteen on VAES). encryptBatch must give every pkts[i].b the
// bytes Encrypt(b, b) would; it must not allocate.
type batchEncrypter interface {
	encryptBatch(pkts []outPacket)
}

// sealBatch seals every datagram of pkts in place, as pkts[i].b =
// seal(pkts[i].b) each, encrypting them together when the cipher is a
// batchEncrypter and drawing the nonces of a batch (CFB batches and AEADs)
// in one go. Safe for concurrent use; does not allocate.
func (c *packetCrypter) sealBatch(pkts []outPacket) {
	if len(pkts) < 2 || (c.batch == nil && c.aead == nil) {
		for i := range pkts {
			pkts[i].b = c.seal(pkts[i].b)
		}
		return
	}
	// The batch's nonces come from one generator, taken once (nonceBatch):
	// per datagram, the pool's Get and Put cost as much as the draw.
	nb := startNonces()
	if c.aead != nil {
		for i := range pkts {
			pkt := pkts[i].b
			if len(pkt) < c.hdr {
				pkts[i].b = nil // as seal: a caller bug, nothing to send
				continue
			}
			nonce := pkt[:c.hdr]
			nb.fill(nonce)
			pkts[i].b = c.aead.Seal(nonce, nonce, pkt[c.hdr:], nil)
		}
		nb.done()
		return
	}
	for i := range pkts {
		pkt := pkts[i].b
		if len(pkt) < c.hdr {
			pkts[i].b = nil // as seal: a caller bug, nothing to send
			continue
		}
		nb.fill(pkt[:cfbNonceSize])
		binary.LittleEndian.PutUint32(pkt[cfbNonceSize:], crcIEEE(pkt[cryptHeader:]))
	}
	nb.done()
	c.batch.encryptBatch(pkts)
}

// headerSize is the room seal needs in front of the payload: 0 without a cipher,
// 20 for in-place ciphers (nonce and CRC32), the nonce size for an AEAD.
func (c *packetCrypter) headerSize() int { return c.hdr }

// overhead is what sealing adds to a payload: headerSize plus the AEAD tag.
func (c *packetCrypter) overhead() int { return c.hdr + c.tag }

// seal turns pkt, headerSize() bytes of room followed by the payload, into the
// datagram to send, in place. For an AEAD cap(pkt) must be at least len(pkt)+tag
// (if it is not, the AEAD allocates a new slice: still correct, only slower). It
// returns the datagram (len(pkt)+tag bytes), or nil if pkt is shorter than
// headerSize (a caller bug). Safe for concurrent use; does not allocate.
func (c *packetCrypter) seal(pkt []byte) []byte {
	if len(pkt) < c.hdr {
		return nil
	}
	switch {
	case c.aead != nil:
		nonce := pkt[:c.hdr]
		fillNonce(nonce)
		return c.aead.Seal(nonce, nonce, pkt[c.hdr:], nil)
	case c.block != nil:
		fillNonce(pkt[:cfbNonceSize])
		binary.LittleEndian.PutUint32(pkt[cfbNonceSize:], crcIEEE(pkt[cryptHeader:]))
		c.block.Encrypt(pkt, pkt)
	}
	return pkt
}

// open decrypts and verifies a received datagram in place and returns its payload,
// a subslice of pkt. It returns errCorrupt when pkt is too short, its CRC32 does
// not match, or AEAD authentication fails. It never panics on any input, never
// allocates, and is safe for concurrent use.
func (c *packetCrypter) open(pkt []byte) ([]byte, error) {
	switch {
	case c.aead != nil:
		if len(pkt) < c.hdr+c.tag {
			return nil, errCorrupt
		}
		body := pkt[c.hdr:]
		out, err := c.aead.Open(body[:0], pkt[:c.hdr], body, nil)
		if err != nil {
			return nil, errCorrupt
		}
		return out, nil
	case c.block != nil:
		if len(pkt) < cryptHeader {
			return nil, errCorrupt
		}
		c.block.Decrypt(pkt, pkt)
		if crcIEEE(pkt[cryptHeader:]) != binary.LittleEndian.Uint32(pkt[cfbNonceSize:]) {
			return nil, errCorrupt
		}
		return pkt[cryptHeader:], nil
	}
	return pkt, nil
}
