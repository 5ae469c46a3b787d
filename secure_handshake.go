package kcp

// Secure-mode handshake (docs/SECURE.md §2): the initiator and responder
// state machines and the stateless cookie. They consume and produce packet
// bytes only; sockets, timers and tables belong to the caller.
//
// Flow: initiator.initiation → responder.handleInitiation (maybe a cookie
// reply first: initiator.consumeCookieReply, then a new initiation) →
// initiator.consumeResponse (XX also returns a finish packet for
// responderHandshake.consumeFinish). Each side then holds a *secureKeypair.

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Packet types, the first byte of every secure packet.
const (
	secInitiation = 1
	secResponse   = 2
	secFinish     = 3
	secCookie     = 4
	secData       = 5
	secControl    = 6
)

// Handshake pattern ids, byte 1 of handshake packets.
const (
	patternIK = 1
	patternXX = 2
	patternNN = 3
)

// Sizes of docs/SECURE.md §2.
const (
	secPrefixLen      = 6
	secMacLen         = 16
	secInitPayloadLen = 80
	secRespPayloadLen = 6
	secFinPayloadLen  = 2
	secCookieLen      = 16
	secCookieReplyLen = secPrefixLen + 4 + chacha20poly1305.NonceSizeX + secCookieLen + 16
	secVersion        = 1

	// cookieSecretLife is how long a cookie secret is current; it stays
	// valid for as long again as the previous one.
	cookieSecretLife = 120 * time.Second
	// cookieUseLife is how long an initiator keeps using a cookie.
	cookieUseLife = 110 * time.Second
)

// secProtocolPrologue is the prologue prefix; the pattern id follows it.
const secProtocolPrologue = "kcpx-secure/v1"

// errSecureState reports a call out of order (a programming error of the
// caller, never caused by the network alone).
var errSecureState = errors.New("kcp: secure: handshake call out of order")

// putPrefix writes the common six-byte prefix.
func putPrefix(b []byte, typ, b1 byte) {
	b[0], b[1], b[2], b[3], b[4], b[5] = typ, b1, 0, 0, 0xF2, 0x00
}

// checkPrefix verifies the reserved bytes and the marker; it returns the type
// and byte 1.
func checkPrefix(b []byte) (typ, b1 byte, ok bool) {
	if len(b) < secPrefixLen || b[2] != 0 || b[3] != 0 || b[4] != 0xF2 || b[5] != 0 {
		return 0, 0, false
	}
	return b[0], b[1], true
}

// noiseLen returns the length of Noise message idx (1..3) of a pattern.
func noiseLen(pattern byte, psk bool, idx int) int {
	const dh, tag = 32, 16
	switch pattern {
	case patternIK:
		if idx == 1 {
			return dh + dh + tag + secInitPayloadLen + tag
		}
		return dh + secRespPayloadLen + tag
	case patternXX:
		switch idx {
		case 1:
			if psk {
				return dh + secInitPayloadLen + tag
			}
			return dh + secInitPayloadLen
		case 2:
			return dh + dh + tag + secRespPayloadLen + tag
		}
		return dh + tag + secFinPayloadLen + tag
	}
	if idx == 1 {
		return dh + secInitPayloadLen + tag
	}
	return dh + secRespPayloadLen + tag
}

// initiationLen, responseLen and finishLen give the packet lengths.
func initiationLen(pattern byte, psk bool) int {
	return secPrefixLen + 4 + noiseLen(pattern, psk, 1) + 2*secMacLen
}
func responseLen(pattern byte, psk bool) int {
	return secPrefixLen + 4 + noiseLen(pattern, psk, 2)
}
func finishLen(psk bool) int { return secPrefixLen + 4 + noiseLen(patternXX, psk, 3) }

// newMacKeys derives K1 and Kc from the material M.
func newMacKeys(m []byte) macKeys {
	k := macKeys{ok: true}
	k.mac1 = blake2s.Sum256(append([]byte("mac1----"), m...))
	k.cookie = blake2s.Sum256(append([]byte("cookie--"), m...))
	return k
}

// mac16 returns the keyed BLAKE2s-128 of msg.
func mac16(key, msg []byte) (out [secMacLen]byte) {
	h, err := blake2s.New128(key)
	if err != nil { // only for a key outside 1..32 bytes, which we never pass
		panic(err)
	}
	h.Write(msg)
	h.Sum(out[:0])
	return out
}

// noiseConfig builds the flynn/noise configuration for a pattern.
func (p *secureParams) noiseConfig(pattern byte, initiator bool) noise.Config {
	c := noise.Config{
		CipherSuite: noise.NewCipherSuite(p.newHandshakeDH(), noise.CipherChaChaPoly, noise.HashBLAKE2s),
		Random:      p.rand,
		Initiator:   initiator,
		Prologue:    append([]byte(secProtocolPrologue), pattern),
	}
	switch pattern {
	case patternIK:
		c.Pattern = noise.HandshakeIK
		c.StaticKeypair = p.static
		if initiator {
			c.PeerStatic = p.peer
		}
		c.PresharedKeyPlacement = 2
	case patternXX:
		c.Pattern = noise.HandshakeXX
		c.StaticKeypair = p.static
		c.PresharedKeyPlacement = 3
	default:
		c.Pattern = noise.HandshakeNN
		c.PresharedKeyPlacement = 0
	}
	if p.psk != nil {
		c.PresharedKey = p.psk
	} else {
		c.PresharedKeyPlacement = 0
	}
	return c
}

// secureInitiator is the client side of one connection's handshakes. Not
// safe for concurrent use.
type secureInitiator struct {
	p          *secureParams
	pattern    byte
	hs         *noise.HandshakeState // nil when no handshake is in progress
	localIndex uint32
	lastMac1   [secMacLen]byte
	cookie     [secCookieLen]byte
	cookieTill time.Time // zero: no cookie
}

// newSecureInitiator returns an initiator for params validated for a client.
func newSecureInitiator(p *secureParams) *secureInitiator {
	return &secureInitiator{p: p, pattern: p.pattern()}
}

// initiation starts a new handshake (new ephemeral key) under localIndex and
// returns the initiation packet.
func (h *secureInitiator) initiation(localIndex uint32, now time.Time) ([]byte, error) {
	hs, err := noise.NewHandshakeState(h.p.noiseConfig(h.pattern, true))
	if err != nil {
		return nil, err
	}
	psk := h.p.psk != nil
	pkt := make([]byte, secPrefixLen+4, initiationLen(h.pattern, psk))
	putPrefix(pkt, secInitiation, h.pattern)
	binary.LittleEndian.PutUint32(pkt[6:], localIndex)
	var payload [secInitPayloadLen]byte
	payload[0] = secVersion
	payload[1] = byte(h.p.cipher)
	if h.p.cipher == SecureCipherAuto {
		payload[1] = byte(SecureChaCha20Poly1305)
	}
	binary.LittleEndian.PutUint32(payload[3:], localIndex)
	pkt, _, _, err = hs.WriteMessage(pkt, payload[:])
	if err != nil {
		return nil, err
	}
	keys := &h.p.macKeys[h.pattern]
	m1 := mac16(keys.mac1[:], pkt)
	pkt = append(pkt, m1[:]...)
	var m2 [secMacLen]byte
	if !h.cookieTill.IsZero() && now.Before(h.cookieTill) {
		m2 = mac16(h.cookie[:], pkt)
	}
	pkt = append(pkt, m2[:]...)
	h.hs, h.localIndex, h.lastMac1 = hs, localIndex, m1
	return pkt, nil
}

// consumeCookieReply stores the cookie of a cookie reply to our last
// initiation. The caller then sends a new initiation.
func (h *secureInitiator) consumeCookieReply(pkt []byte, now time.Time) error {
	typ, b1, ok := checkPrefix(pkt)
	if !ok || typ != secCookie || b1 != 0 || len(pkt) != secCookieReplyLen {
		return ErrSecureMalformed
	}
	if h.hs == nil || binary.LittleEndian.Uint32(pkt[6:]) != h.localIndex {
		return ErrSecureAuth
	}
	aead, err := chacha20poly1305.NewX(h.p.macKeys[h.pattern].cookie[:])
	if err != nil {
		return err
	}
	nonce := pkt[10 : 10+chacha20poly1305.NonceSizeX]
	var cookie [secCookieLen]byte
	if _, err := aead.Open(cookie[:0], nonce, pkt[10+len(nonce):], h.lastMac1[:]); err != nil {
		return ErrSecureAuth
	}
	h.cookie, h.cookieTill = cookie, now.Add(cookieUseLife)
	return nil
}

// consumeResponse reads the response to our last initiation. It returns the
// transport keys and, in XX, the finish packet to send. On an error that the
// response's contents caused, the handshake is discarded: the caller starts
// a new one at its next retry.
func (h *secureInitiator) consumeResponse(pkt []byte, now time.Time) (*secureKeypair, []byte, error) {
	psk := h.p.psk != nil
	typ, pat, ok := checkPrefix(pkt)
	if !ok || typ != secResponse || pat != h.pattern || len(pkt) != responseLen(h.pattern, psk) {
		return nil, nil, ErrSecureMalformed
	}
	if h.hs == nil || binary.LittleEndian.Uint32(pkt[6:]) != h.localIndex {
		return nil, nil, ErrSecureAuth
	}
	hs := h.hs
	h.hs = nil // one try per handshake: flynn/noise leaves state behind on some failures
	payload, cs1, cs2, err := hs.ReadMessage(nil, pkt[10:])
	if err != nil || len(payload) != secRespPayloadLen {
		return nil, nil, ErrSecureAuth
	}
	remoteIndex := binary.LittleEndian.Uint32(payload[2:])
	if payload[0] != 0 {
		return nil, nil, ErrCipherRefused
	}
	cipher := SecureCipher(payload[1])
	if cipher != SecureChaCha20Poly1305 && cipher != SecureAES256GCM {
		return nil, nil, ErrSecureAuth
	}
	var finish []byte
	if h.pattern == patternXX {
		peer := append([]byte(nil), hs.PeerStatic()...)
		if err := checkPeerKey(h.p.verify, peer, true); err != nil {
			return nil, nil, err
		}
		finish = make([]byte, secPrefixLen+4, finishLen(psk))
		putPrefix(finish, secFinish, patternXX)
		binary.LittleEndian.PutUint32(finish[6:], remoteIndex)
		finish, cs1, cs2, err = hs.WriteMessage(finish, []byte{0, byte(cipher)})
		if err != nil {
			return nil, nil, err
		}
	}
	if cs1 == nil || cs2 == nil {
		return nil, nil, errSecureState
	}
	kp, err := newSecureKeypair(h.p, true, h.localIndex, remoteIndex, cipher, hs.ChannelBinding(), cs1, cs2, now)
	if err != nil {
		return nil, nil, err
	}
	return kp, finish, nil
}

// checkPeerKey applies VerifyPeer to a static key the handshake revealed.
// required says whether a missing VerifyPeer refuses (client, XX) or accepts
// (listener).
func checkPeerKey(verify func([]byte) error, key []byte, required bool) error {
	if verify == nil {
		if required {
			return &PeerKeyError{PublicKey: key, Err: ErrUnknownPeerKey}
		}
		return nil
	}
	if err := verify(key); err != nil {
		return &PeerKeyError{PublicKey: key, Err: errors.Join(ErrPeerKeyRejected, err)}
	}
	return nil
}

// cookieJar holds a listener's rotating cookie secret. Safe for concurrent
// use.
type cookieJar struct {
	mu      sync.Mutex
	cur     [32]byte
	prev    [32]byte
	hasPrev bool
	since   time.Time // when cur was made; zero before the first use
}

// secrets returns the current and, if still valid, previous secret,
// rotating as time passes.
func (j *cookieJar) secrets(now time.Time) (cur, prev [32]byte, hasPrev bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if age := now.Sub(j.since); j.since.IsZero() || age >= cookieSecretLife {
		j.prev, j.hasPrev = j.cur, !j.since.IsZero() && age < 2*cookieSecretLife
		rand.Read(j.cur[:])
		j.since = now
	}
	return j.cur, j.prev, j.hasPrev
}

// cookieFor computes cookie(src) under one secret.
func cookieFor(secret *[32]byte, src netip.AddrPort) [secCookieLen]byte {
	var b [18]byte
	ip := src.Addr().Unmap()
	n := copy(b[:], ip.AsSlice())
	binary.LittleEndian.PutUint16(b[n:], src.Port())
	return mac16(secret[:], b[:n+2])
}

// secureResponder is a listener's handshake engine. Safe for concurrent use;
// it keeps no per-handshake state (handleInitiation returns it).
type secureResponder struct {
	p       *secureParams
	cookies cookieJar
	// cookieAEAD seals cookie replies, by pattern (its Kc), made once: a
	// flood of initiations drawing cookies allocates no cipher per packet.
	cookieAEAD [patternNN + 1]cipher.AEAD
}

// newSecureResponder returns a responder for params validated for a
// listener.
func newSecureResponder(p *secureParams) *secureResponder {
	r := &secureResponder{p: p}
	for i := range p.macKeys {
		if p.macKeys[i].ok {
			r.cookieAEAD[i], _ = chacha20poly1305.NewX(p.macKeys[i].cookie[:])
		}
	}
	return r
}

// responderHandshake is one handshake a listener holds: XX until the
// finish arrives, every pattern until the first transport packet confirms the
// keys. The caller keys it by localIndex. Not safe for concurrent use.
type responderHandshake struct {
	pattern     byte
	hs          *noise.HandshakeState // XX before the finish; nil after
	localIndex  uint32
	remoteIndex uint32
	cipher      SecureCipher
	created     time.Time
	response    []byte         // the response sent, for a duplicate initiation
	keys        *secureKeypair // set once the handshake completed
	peerStatic  []byte         // the client's static key (IK, XX), if any
}

// needsCookie reports whether an initiation must carry a valid mac2.
func (r *secureResponder) needsCookie(pending int) bool {
	switch r.p.cookie {
	case CookieAlways:
		return true
	case CookieNever:
		return false
	}
	return pending >= r.p.cookieLoad
}

// handleInitiation processes an initiation from src. pending is the number
// of handshakes the caller holds (for the cookie policy and the bound);
// localIndex is the index the caller reserved for this handshake.
//
// It returns the packet to send back (response or cookie reply; nil to stay
// silent) and, when a handshake began, its state. A cookie reply comes with a
// nil handshake and nil error: no state was made.
func (r *secureResponder) handleInitiation(pkt []byte, src netip.AddrPort, localIndex uint32, pending int, now time.Time) ([]byte, *responderHandshake, error) {
	return r.handleInitiationBuf(nil, pkt, src, localIndex, pending, now)
}

// handleInitiationBuf is handleInitiation with a cookie reply appended to
// cbuf[:0] (no allocation when cbuf has secCookieReplyLen bytes of room).
func (r *secureResponder) handleInitiationBuf(cbuf, pkt []byte, src netip.AddrPort, localIndex uint32, pending int, now time.Time) ([]byte, *responderHandshake, error) {
	typ, pat, ok := checkPrefix(pkt)
	psk := r.p.psk != nil
	if !ok || typ != secInitiation || !r.p.accepts(pat) || len(pkt) != initiationLen(pat, psk) {
		return nil, nil, ErrSecureMalformed
	}
	keys := &r.p.macKeys[pat]
	m2off := len(pkt) - secMacLen
	m1off := m2off - secMacLen
	want1 := mac16(keys.mac1[:], pkt[:m1off])
	if !hmac.Equal(want1[:], pkt[m1off:m2off]) {
		return nil, nil, ErrSecureAuth
	}
	if r.needsCookie(pending) && !r.mac2Valid(pkt, m2off, src, now) {
		return r.cookieReply(cbuf[:0], pkt, m1off, src, now), nil, nil
	}
	if pending >= r.p.maxPending {
		return nil, nil, errHandshakeBusy
	}
	hs, err := noise.NewHandshakeState(r.p.noiseConfig(pat, false))
	if err != nil {
		return nil, nil, err
	}
	payload, _, _, err := hs.ReadMessage(nil, pkt[10:m1off])
	if err != nil || len(payload) != secInitPayloadLen || payload[0] != secVersion ||
		binary.LittleEndian.Uint32(payload[3:]) != binary.LittleEndian.Uint32(pkt[6:]) {
		return nil, nil, ErrSecureAuth
	}
	rh := &responderHandshake{
		pattern:     pat,
		localIndex:  localIndex,
		remoteIndex: binary.LittleEndian.Uint32(pkt[6:]),
		cipher:      SecureCipher(payload[1]),
		created:     now,
	}
	status := byte(0)
	if rh.cipher != SecureChaCha20Poly1305 && rh.cipher != SecureAES256GCM ||
		r.p.cipher != SecureCipherAuto && r.p.cipher != rh.cipher {
		status = 1
	}
	if pat == patternIK && status == 0 {
		rh.peerStatic = append([]byte(nil), hs.PeerStatic()...)
		if err := checkPeerKey(r.p.verify, rh.peerStatic, false); err != nil {
			return nil, nil, err
		}
	}
	resp := make([]byte, secPrefixLen+4, responseLen(pat, psk))
	putPrefix(resp, secResponse, pat)
	binary.LittleEndian.PutUint32(resp[6:], rh.remoteIndex)
	var rp [secRespPayloadLen]byte
	rp[0], rp[1] = status, byte(rh.cipher)
	binary.LittleEndian.PutUint32(rp[2:], localIndex)
	resp, cs1, cs2, err := hs.WriteMessage(resp, rp[:])
	if err != nil {
		return nil, nil, err
	}
	if status != 0 {
		return resp, nil, nil
	}
	rh.response = resp
	if pat == patternXX {
		rh.hs = hs
		return resp, rh, nil
	}
	rh.keys, err = newSecureKeypair(r.p, false, localIndex, rh.remoteIndex, rh.cipher, hs.ChannelBinding(), cs1, cs2, now)
	if err != nil {
		return nil, nil, err
	}
	return resp, rh, nil
}

// errHandshakeBusy: MaxPendingHandshakes are held; the initiation is dropped.
var errHandshakeBusy = errors.New("kcp: secure: too many handshakes in flight")

// mac2Valid checks mac2 against the cookie of src under the current and
// previous secrets.
func (r *secureResponder) mac2Valid(pkt []byte, m2off int, src netip.AddrPort, now time.Time) bool {
	cur, prev, hasPrev := r.cookies.secrets(now)
	c := cookieFor(&cur, src)
	m := mac16(c[:], pkt[:m2off])
	if hmac.Equal(m[:], pkt[m2off:]) {
		return true
	}
	if !hasPrev {
		return false
	}
	c = cookieFor(&prev, src)
	m = mac16(c[:], pkt[:m2off])
	return hmac.Equal(m[:], pkt[m2off:])
}

// cookieReply appends the cookie reply to an initiation from src to out.
func (r *secureResponder) cookieReply(out, pkt []byte, m1off int, src netip.AddrPort, now time.Time) []byte {
	cur, _, _ := r.cookies.secrets(now)
	cookie := cookieFor(&cur, src)
	aead := r.cookieAEAD[pkt[1]]
	if aead == nil {
		return nil
	}
	if cap(out) < secCookieReplyLen {
		out = make([]byte, 0, secCookieReplyLen)
	}
	out = out[:secPrefixLen+4+chacha20poly1305.NonceSizeX]
	putPrefix(out, secCookie, 0)
	copy(out[6:10], pkt[6:10])
	rand.Read(out[10:])
	return aead.Seal(out, out[10:], cookie[:], pkt[m1off:m1off+secMacLen])
}

// consumeFinish completes an XX handshake with the initiator's finish.
func (rh *responderHandshake) consumeFinish(p *secureParams, pkt []byte, now time.Time) (*secureKeypair, error) {
	typ, pat, ok := checkPrefix(pkt)
	if !ok || typ != secFinish || pat != patternXX || len(pkt) != finishLen(p.psk != nil) {
		return nil, ErrSecureMalformed
	}
	if rh.hs == nil || binary.LittleEndian.Uint32(pkt[6:]) != rh.localIndex {
		return nil, ErrSecureAuth
	}
	// One try: flynn/noise's rollback restores the hash and chaining key
	// but not the cipher key, so a failed read may leave the state unusable.
	// The initiator, never confirmed, starts over.
	hs := rh.hs
	rh.hs = nil
	payload, cs1, cs2, err := hs.ReadMessage(nil, pkt[10:])
	if err != nil || len(payload) != secFinPayloadLen || cs1 == nil {
		return nil, ErrSecureAuth
	}
	rh.peerStatic = append([]byte(nil), hs.PeerStatic()...)
	if err := checkPeerKey(p.verify, rh.peerStatic, false); err != nil {
		return nil, err
	}
	rh.keys, err = newSecureKeypair(p, false, rh.localIndex, rh.remoteIndex, rh.cipher, hs.ChannelBinding(), cs1, cs2, now)
	return rh.keys, err
}
