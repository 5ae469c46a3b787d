package kcp

// Secure-mode transport keys (docs/SECURE.md §3, §4): per-direction key
// epochs derived from the handshake, counter nonces, the replay window and
// the rekey rule. Sealing and opening work in place and allocate nothing.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Transport sizes and limits.
const (
	// secHeaderLen is the transport header: prefix, receiver index, counter.
	secHeaderLen = secPrefixLen + 4 + 8
	// secTagLen is the AEAD tag at the end of every transport packet.
	secTagLen = 16
	// SecureOverhead is the number of bytes secure mode adds to each
	// datagram: an 18-byte header and a 16-byte tag.
	SecureOverhead = secHeaderLen + secTagLen

	// secCounterLimit: counters at or above it are never sealed or opened.
	secCounterLimit = 1 << 63
	// replayWindowSize is how far below the highest counter a packet may
	// arrive and still be accepted once.
	replayWindowSize = 2048
	// replayWords is the bitmap ring: one word more than the window, so the
	// word of the highest counter never overlaps the oldest.
	replayWords = replayWindowSize/64 + 1
	// secMaxEpochSkip bounds how many epochs forward a receiver derives for
	// one packet (each step is one HKDF-Expand).
	secMaxEpochSkip = 16
	// secKeepOldEpoch is how long the previous receive epoch still opens
	// packets after a switch.
	secKeepOldEpoch = 10 * time.Second
)

// replayWindow accepts each counter at most once, within replayWindowSize
// of the highest accepted. Not safe for concurrent use (its owner locks).
type replayWindow struct {
	limit uint64 // highest accepted counter + 1; 0 before the first
	bits  [replayWords]uint64
}

// check reports whether c would be accepted, without recording it.
func (w *replayWindow) check(c uint64) bool {
	if c >= secCounterLimit {
		return false
	}
	if c >= w.limit {
		return true
	}
	if w.limit-c > replayWindowSize {
		return false
	}
	return w.bits[(c>>6)%replayWords]&(1<<(c&63)) == 0
}

// mark records c, which check accepted; it reports false if c was taken
// meanwhile.
func (w *replayWindow) mark(c uint64) bool {
	if !w.check(c) {
		return false
	}
	if c >= w.limit {
		word := c >> 6
		switch {
		case w.limit == 0 || word-(w.limit-1)>>6 >= replayWords:
			w.bits = [replayWords]uint64{}
		default: // clear the words entered beyond the old top word
			for i := (w.limit-1)>>6 + 1; i <= word; i++ {
				w.bits[i%replayWords] = 0
			}
		}
		w.limit = c + 1
	}
	w.bits[(c>>6)%replayWords] |= 1 << (c & 63)
	return true
}

// hkdfExpand is HKDF-Expand-SHA-256 to 32 bytes.
func hkdfExpand(secret *[32]byte, info string) (out [32]byte) {
	r := hkdf.Expand(sha256.New, secret[:], []byte(info))
	r.Read(out[:])
	return out
}

// newTransportAEAD makes the transport AEAD for key.
func newTransportAEAD(c SecureCipher, key *[32]byte) (cipher.AEAD, error) {
	if c == SecureAES256GCM {
		b, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return chacha20poly1305.New(key[:])
}

// epochKeys derives K(n) and S(n+1) from S(n) and erases S(n).
func epochKeys(c SecureCipher, secret *[32]byte) (cipher.AEAD, error) {
	k := hkdfExpand(secret, "kcpx v1 key")
	*secret = hkdfExpand(secret, "kcpx v1 next")
	a, err := newTransportAEAD(c, &k)
	clear(k[:])
	return a, err
}

// secureKeypair holds one session's transport keys, both directions. Seal
// and open may be called concurrently with each other; each direction locks
// its own state.
type secureKeypair struct {
	localIndex  uint32 // the index the peer puts in packets to us
	remoteIndex uint32 // the index we put in packets to the peer
	initiator   bool
	cipher      SecureCipher
	rekeyPkts   uint64
	rekeyTime   time.Duration

	// send is guarded by sendMu.
	sendMu      sync.Mutex
	sendAEAD    cipher.AEAD
	sendNext    [32]byte // S(n+1)
	sendEpoch   uint64
	sendCounter uint64
	sendInEpoch uint64
	sendSince   time.Time
	sendNonce   [12]byte // scratch: a local array would escape through cipher.AEAD

	// recv is guarded by recvMu.
	recvMu        sync.Mutex
	recvAEAD      cipher.AEAD
	recvEpoch     uint64
	recvNext      [32]byte // S(recvEpoch+1)
	prevAEAD      cipher.AEAD
	prevUntil     time.Time
	window        replayWindow
	recvConfirmed bool // a packet opened under these keys
	recvNonce     [12]byte
}

// newSecureKeypair derives the transport keys (docs/SECURE.md §3) from a
// finished Noise handshake: cs1 and cs2 from Split, h the handshake hash.
func newSecureKeypair(p *secureParams, initiator bool, localIndex, remoteIndex uint32, c SecureCipher,
	h []byte, cs1, cs2 *noise.CipherState, now time.Time) (*secureKeypair, error) {
	k1, k2 := cs1.UnsafeKey(), cs2.UnsafeKey()
	var i2r, r2i [32]byte
	if _, err := hkdf.New(sha256.New, k1[:], h, []byte("kcpx v1 i2r")).Read(i2r[:]); err != nil {
		return nil, err
	}
	if _, err := hkdf.New(sha256.New, k2[:], h, []byte("kcpx v1 r2i")).Read(r2i[:]); err != nil {
		return nil, err
	}
	clear(k1[:])
	clear(k2[:])
	kp := &secureKeypair{
		localIndex:  localIndex,
		remoteIndex: remoteIndex,
		initiator:   initiator,
		cipher:      c,
		rekeyPkts:   p.rekeyPkts,
		rekeyTime:   p.rekeyTime,
		sendSince:   now,
	}
	kp.sendNext, kp.recvNext = r2i, i2r
	if initiator {
		kp.sendNext, kp.recvNext = i2r, r2i
	}
	clear(i2r[:])
	clear(r2i[:])
	var err error
	if kp.sendAEAD, err = epochKeys(c, &kp.sendNext); err != nil {
		return nil, err
	}
	if kp.recvAEAD, err = epochKeys(c, &kp.recvNext); err != nil {
		return nil, err
	}
	return kp, nil
}

// nonceFor writes the 12-byte nonce of counter c.
func nonceFor(n *[12]byte, c uint64) {
	n[0], n[1], n[2], n[3] = 0, 0, 0, 0
	binary.LittleEndian.PutUint64(n[4:], c)
}

// seal writes a transport packet of type typ (secData or secControl) into
// buf: the header, then payload sealed, then the tag. The payload must be
// buf[secHeaderLen:secHeaderLen+n] (sealed in place) or not overlap buf at
// all. cap(buf) must be at least n+SecureOverhead. It returns the packet.
func (kp *secureKeypair) seal(buf []byte, typ byte, payload []byte, now time.Time) ([]byte, error) {
	kp.sendMu.Lock()
	if kp.sendInEpoch >= kp.rekeyPkts || now.Sub(kp.sendSince) >= kp.rekeyTime {
		a, err := epochKeys(kp.cipher, &kp.sendNext)
		if err != nil {
			kp.sendMu.Unlock()
			return nil, err
		}
		kp.sendAEAD, kp.sendEpoch, kp.sendInEpoch, kp.sendSince = a, kp.sendEpoch+1, 0, now
	}
	if kp.sendCounter >= secCounterLimit {
		kp.sendMu.Unlock()
		return nil, ErrKeyExhausted
	}
	c := kp.sendCounter
	kp.sendCounter++
	kp.sendInEpoch++
	// Sealing under the lock keeps the nonce scratch private; a session has
	// one sender anyway.
	defer kp.sendMu.Unlock()
	hdr := buf[:secHeaderLen]
	putPrefix(hdr, typ, byte(kp.sendEpoch))
	binary.LittleEndian.PutUint32(hdr[6:], kp.remoteIndex)
	binary.LittleEndian.PutUint64(hdr[10:], c)
	nonceFor(&kp.sendNonce, c)
	return kp.sendAEAD.Seal(hdr, kp.sendNonce[:], payload, hdr), nil
}

// parseTransport checks a transport packet's framing and returns its type,
// epoch byte, receiver index and counter.
func parseTransport(pkt []byte) (typ, epoch byte, index uint32, counter uint64, ok bool) {
	typ, epoch, ok = checkPrefix(pkt)
	if !ok || (typ != secData && typ != secControl) || len(pkt) < SecureOverhead {
		return 0, 0, 0, 0, false
	}
	return typ, epoch, binary.LittleEndian.Uint32(pkt[6:]), binary.LittleEndian.Uint64(pkt[10:]), true
}

// open authenticates and decrypts a transport packet in place. It returns
// the type, the plaintext (a slice of pkt) and the counter. pkt is
// overwritten whether or not it opens. The caller has matched the receiver
// index.
func (kp *secureKeypair) open(pkt []byte, now time.Time) (typ byte, plain []byte, err error) {
	typ, e, index, c, ok := parseTransport(pkt)
	if !ok {
		return 0, nil, ErrSecureMalformed
	}
	if index != kp.localIndex {
		return 0, nil, ErrSecureAuth
	}
	kp.recvMu.Lock()
	defer kp.recvMu.Unlock()
	if !kp.window.check(c) {
		return 0, nil, ErrReplay
	}
	nonce := kp.recvNonce[:]
	nonceFor(&kp.recvNonce, c)
	hdr, body := pkt[:secHeaderLen], pkt[secHeaderLen:]
	d := byte(e - byte(kp.recvEpoch)) // epochs ahead, mod 256
	switch {
	case d == 0:
		plain, err = kp.recvAEAD.Open(body[:0], nonce, body, hdr)
	case d == 0xFF:
		if kp.prevAEAD == nil || !now.Before(kp.prevUntil) {
			return 0, nil, ErrSecureAuth
		}
		plain, err = kp.prevAEAD.Open(body[:0], nonce, body, hdr)
	case d <= secMaxEpochSkip:
		next := kp.recvNext
		var a cipher.AEAD
		for i := byte(0); i < d; i++ {
			if a, err = epochKeys(kp.cipher, &next); err != nil {
				return 0, nil, err
			}
		}
		if plain, err = a.Open(body[:0], nonce, body, hdr); err != nil {
			return 0, nil, ErrSecureAuth
		}
		kp.prevAEAD, kp.prevUntil = kp.recvAEAD, now.Add(secKeepOldEpoch)
		if d > 1 {
			kp.prevAEAD = nil // the epoch just before the new one was never seen
		}
		kp.recvAEAD, kp.recvNext, kp.recvEpoch = a, next, kp.recvEpoch+uint64(d)
	default:
		return 0, nil, ErrSecureAuth
	}
	if err != nil {
		return 0, nil, ErrSecureAuth
	}
	kp.window.mark(c)
	kp.recvConfirmed = true
	return typ, plain, nil
}

// confirmed reports whether any packet opened under these keys.
func (kp *secureKeypair) confirmed() bool {
	kp.recvMu.Lock()
	defer kp.recvMu.Unlock()
	return kp.recvConfirmed
}

// Control frame kinds (docs/SECURE.md §4).
const (
	ctlPathChallenge = 1
	ctlPathResponse  = 2
	ctlClose         = 3
)
