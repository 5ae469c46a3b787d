package interop

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// testPass is kcptun's derivation of kcptun's default key.
var testPass = KcptunPass("it's a secrect")

// datagramSizes covers the 20-byte minimum (a bare crypto header), block
// boundaries either side for 8- and 16-byte blocks, and the MaxDatagram limit.
var datagramSizes = []int{20, 21, 23, 24, 25, 31, 32, 33, 47, 48, 49, 64, 100, 127, 128, 129, 136, 1000, 1350, 1376, 1400, MaxDatagram - 1, MaxDatagram}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestBlockCipherKnownAnswers checks, for every in-place cipher, that kcpx's
// Encrypt and Decrypt give exactly kcp-go's bytes for the same key and input,
// out of place and in place.
func TestBlockCipherKnownAnswers(t *testing.T) {
	for _, c := range Ciphers {
		if c.IsNil() || c.AEAD {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			g, err := c.KCPGo(testPass)
			if err != nil {
				t.Fatal(err)
			}
			x, err := c.KCPX(testPass)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(c.Name))))
			for _, n := range datagramSizes {
				src := randomBytes(rng, n)
				want, got := make([]byte, n), make([]byte, n)
				g.Encrypt(want, src)
				x.Encrypt(got, src)
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes: kcpx Encrypt differs from kcp-go at byte %d", n, firstDiff(got, want))
				}
				if c.Name != "none" && bytes.Equal(want, src) {
					t.Fatalf("%d bytes: Encrypt left the input unchanged", n)
				}
				inPlace := append([]byte(nil), src...)
				x.Encrypt(inPlace, inPlace)
				if !bytes.Equal(inPlace, want) {
					t.Fatalf("%d bytes: kcpx in-place Encrypt differs from kcp-go at byte %d", n, firstDiff(inPlace, want))
				}
				// Decrypt the same random bytes with both: identical too.
				g.Decrypt(want, src)
				x.Decrypt(got, src)
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes: kcpx Decrypt differs from kcp-go at byte %d", n, firstDiff(got, want))
				}
				// And each library decrypts the other's ciphertext.
				ct := make([]byte, n)
				x.Encrypt(ct, src)
				g.Decrypt(ct, ct)
				if !bytes.Equal(ct, src) {
					t.Fatalf("%d bytes: kcp-go cannot decrypt kcpx's ciphertext", n)
				}
				g.Encrypt(ct, src)
				x.Decrypt(ct, ct)
				if !bytes.Equal(ct, src) {
					t.Fatalf("%d bytes: kcpx cannot decrypt kcp-go's ciphertext", n)
				}
			}
		})
	}
}

// seqReader is a deterministic, resettable nonce source: the same seed gives
// the same byte sequence however it is cut into reads. Safe for concurrent use.
type seqReader struct {
	mu   sync.Mutex
	seed uint64
	rng  *rand.ChaCha8
}

func newSeqReader(seed uint64) *seqReader {
	r := &seqReader{seed: seed}
	r.Reset()
	return r
}

func (r *seqReader) Reset() {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], r.seed)
	r.mu.Lock()
	r.rng = rand.NewChaCha8(s)
	r.mu.Unlock()
}

func (r *seqReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.Read(p)
}

// kcpgoAEAD is the method set of kcp-go's AEAD BlockCrypt (cipher.AEAD's).
type kcpgoAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
	Overhead() int
}

// kcpgoSeal frames payload as kcp-go's session transmit path does: nonce from
// nonces, then CRC32 and CFB (or XOR, Salsa20, none) in place, or an AEAD
// seal; a nil block sends the payload as is.
func kcpgoSeal(block kcpgo.BlockCrypt, nonces io.Reader, payload []byte) []byte {
	switch b := block.(type) {
	case nil:
		return append([]byte(nil), payload...)
	case kcpgoAEAD:
		ns := b.NonceSize()
		buf := make([]byte, ns+len(payload), ns+len(payload)+b.Overhead())
		copy(buf[ns:], payload)
		io.ReadFull(nonces, buf[:ns])
		return b.Seal(buf[:ns], buf[:ns], buf[ns:], nil)
	default:
		buf := make([]byte, 20+len(payload))
		copy(buf[20:], payload)
		io.ReadFull(nonces, buf[:16])
		binary.LittleEndian.PutUint32(buf[16:], crc32.ChecksumIEEE(buf[20:]))
		block.Encrypt(buf, buf)
		return buf
	}
}

// kcpgoOpen checks and strips the framing as kcp-go's session receive path
// does; ok is false where kcp-go would drop the datagram.
func kcpgoOpen(block kcpgo.BlockCrypt, pkt []byte) (payload []byte, ok bool) {
	pkt = append([]byte(nil), pkt...)
	switch b := block.(type) {
	case nil:
		return pkt, true
	case kcpgoAEAD:
		ns := b.NonceSize()
		if len(pkt) < ns+b.Overhead() {
			return nil, false
		}
		out, err := b.Open(pkt[ns:ns], pkt[:ns], pkt[ns:], nil)
		return out, err == nil
	default:
		if len(pkt) < 20 {
			return nil, false
		}
		block.Decrypt(pkt, pkt)
		if crc32.ChecksumIEEE(pkt[20:]) != binary.LittleEndian.Uint32(pkt[16:]) {
			return nil, false
		}
		return pkt[20:], true
	}
}

// kcpxSealed seals payload with kcpx's framing and returns the datagram.
func kcpxSealed(pc unsafe.Pointer, payload []byte) []byte {
	h, o := kcpxHeaderSize(pc), kcpxOverhead(pc)
	buf := make([]byte, h+len(payload), h+len(payload)+(o-h))
	copy(buf[h:], payload)
	return append([]byte(nil), kcpxSeal(pc, buf)...)
}

// TestSealedPacketsIdentical seals the same payloads with the same nonce
// sequence through kcp-go's framing and kcpx's, for every cipher including
// nil and the AEADs, and checks the datagrams are byte-identical; then that
// each library opens the other's datagrams, and that a flipped bit is refused
// by both.
func TestSealedPacketsIdentical(t *testing.T) {
	defer restoreKCPXNonces()
	for _, c := range Ciphers {
		t.Run(c.Name, func(t *testing.T) {
			g, err := c.KCPGo(testPass)
			if err != nil {
				t.Fatal(err)
			}
			x, err := c.KCPX(testPass)
			if err != nil {
				t.Fatal(err)
			}
			pc := kcpxNewPacketCrypter(x)
			if h := kcpxHeaderSize(pc); h != c.HeaderSize() {
				t.Fatalf("kcpx header size %d, kcp-go's is %d", h, c.HeaderSize())
			}
			if o := kcpxOverhead(pc); o != c.HeaderSize()+c.Overhead() {
				t.Fatalf("kcpx overhead %d, kcp-go's is %d", o, c.HeaderSize()+c.Overhead())
			}
			nonceG, nonceX := newSeqReader(7), newSeqReader(7)
			kcpxNonces.use(nonceX)
			rng := rand.New(rand.NewPCG(2, uint64(len(c.Name))))
			for _, n := range []int{1, 23, 24, 100, 1000, 1376, 1440} {
				payload := randomBytes(rng, n)
				want := kcpgoSeal(g, nonceG, payload)
				got := kcpxSealed(pc, payload)
				if !bytes.Equal(got, want) {
					t.Fatalf("%d-byte payload: kcpx datagram (%d bytes) differs from kcp-go's (%d bytes) at byte %d", n, len(got), len(want), firstDiff(got, want))
				}
				opened, err := kcpxOpen(pc, append([]byte(nil), want...))
				if err != nil || !bytes.Equal(opened, payload) {
					t.Fatalf("%d-byte payload: kcpx cannot open kcp-go's datagram (err %v)", n, err)
				}
				if p, ok := kcpgoOpen(g, got); !ok || !bytes.Equal(p, payload) {
					t.Fatalf("%d-byte payload: kcp-go cannot open kcpx's datagram", n)
				}
				if c.IsNil() {
					continue // raw KCP: nothing to check
				}
				bad := append([]byte(nil), want...)
				bad[len(bad)-1] ^= 0x40
				if _, err := kcpxOpen(pc, bad); err == nil {
					t.Fatalf("%d-byte payload: kcpx opened a datagram with a flipped bit", n)
				}
				if _, ok := kcpgoOpen(g, append(bad[:0:0], bad...)); ok {
					t.Fatalf("%d-byte payload: kcp-go opened a datagram with a flipped bit", n)
				}
			}
		})
	}
}

// TestOpenRefusesShortDatagrams feeds both libraries' receive framing every
// length below the header (and tag) size: kcpx refuses each without
// panicking, as kcp-go drops it.
func TestOpenRefusesShortDatagrams(t *testing.T) {
	for _, c := range Ciphers {
		if c.IsNil() {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			x, err := c.KCPX(testPass)
			if err != nil {
				t.Fatal(err)
			}
			pc := kcpxNewPacketCrypter(x)
			for n := range c.HeaderSize() + c.Overhead() {
				if _, err := kcpxOpen(pc, make([]byte, n)); err == nil {
					t.Fatalf("kcpx opened a %d-byte datagram", n)
				}
			}
		})
	}
}
