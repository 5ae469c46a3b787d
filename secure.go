package kcp

// Secure mode configuration, keys and errors. The wire format is specified in
// docs/SECURE.md; the handshake is in secure_handshake.go, the transport keys
// in secure_transport.go.

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/curve25519"
)

// SecureKeySize is the size in bytes of a secure-mode static key (X25519,
// private or public) and of a pre-shared key.
const SecureKeySize = 32

// SecureCipher names the AEAD that protects transport packets in secure mode.
// The handshake itself always uses ChaCha20-Poly1305.
type SecureCipher byte

const (
	// SecureCipherAuto on a client proposes ChaCha20-Poly1305; on a listener
	// it accepts either cipher the client proposes.
	SecureCipherAuto SecureCipher = 0
	// SecureChaCha20Poly1305 is ChaCha20-Poly1305 (RFC 8439), AEAD id 1.
	SecureChaCha20Poly1305 SecureCipher = 1
	// SecureAES256GCM is AES-256-GCM, AEAD id 2; the faster choice on CPUs
	// with AES instructions.
	SecureAES256GCM SecureCipher = 2
)

// String returns the cipher's name.
func (c SecureCipher) String() string {
	switch c {
	case SecureCipherAuto:
		return "auto"
	case SecureChaCha20Poly1305:
		return "chacha20-poly1305"
	case SecureAES256GCM:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("SecureCipher(%d)", byte(c))
}

// CookiePolicy says when a secure listener makes a client prove its address
// with a stateless cookie round trip before doing any handshake work.
type CookiePolicy int

const (
	// CookieUnderLoad requires a cookie only while more than
	// SecureConfig.CookieThreshold handshakes are in flight (the default).
	CookieUnderLoad CookiePolicy = iota
	// CookieAlways requires a cookie for every handshake: one more round trip
	// for every client, no handshake work ever for a spoofed source.
	CookieAlways
	// CookieNever never requires one. Spoofed initiations then each cost a
	// DH and a pending entry, still bounded by MaxPendingHandshakes.
	CookieNever
)

// SecureConfig configures secure mode on one end. The zero value is not
// usable: give a static key (PrivateKey), a pre-shared key (PresharedKey or
// Passphrase with Salt), or both. The handshake pattern follows from what is
// set (docs/SECURE.md §2): PeerPublicKey set gives Noise IK, a static key
// without it gives XX, a PSK alone gives NNpsk0; a PSK next to static keys
// adds the psk modifier. Both ends must agree on whether a PSK is used.
//
// A SecureConfig must not be modified once passed to DialSecure,
// ListenSecure or the handshake functions; it may then be shared by any
// number of them concurrently.
type SecureConfig struct {
	// PrivateKey is this end's static X25519 private key (SecureKeySize
	// bytes, from GenerateSecureKey). Required on a listener unless it only
	// uses a PSK; optional on a client (a client with a PSK and no key uses
	// NNpsk0).
	PrivateKey []byte

	// PeerPublicKey, on a client, pins the server's static public key: the
	// handshake is Noise IK and succeeds only with the server that holds the
	// matching private key. Ignored on a listener.
	PeerPublicKey []byte

	// VerifyPeer, when set, is called with the peer's static public key once
	// the handshake has revealed it: on a client in XX mode (no
	// PeerPublicKey) to accept or refuse the server, on a listener to
	// authorise a client key. A non-nil error fails the handshake; the client
	// sees it wrapped in a *PeerKeyError. A client in XX mode without
	// VerifyPeer refuses every server key with ErrUnknownPeerKey. It may be
	// called concurrently.
	VerifyPeer func(publicKey []byte) error

	// PresharedKey is a SecureKeySize-byte key shared by both ends. Use
	// DeriveSecurePSK to make one from a passphrase once, or set Passphrase
	// and Salt instead.
	PresharedKey []byte

	// Passphrase and Salt derive the PSK with Argon2id (docs/SECURE.md §2)
	// when PresharedKey is empty. The salt is per deployment, at least 8
	// bytes (16 random bytes recommended), identical on both ends. The
	// derivation costs about 64 MiB and tens of milliseconds, once per
	// DialSecure or ListenSecure.
	Passphrase []byte
	Salt       []byte

	// Cipher is the transport AEAD: what a client proposes, and on a
	// listener the only one it accepts (SecureCipherAuto: either).
	Cipher SecureCipher

	// Cookie is the listener's cookie policy; default CookieUnderLoad.
	Cookie CookiePolicy

	// CookieThreshold is the number of handshakes in flight above which
	// CookieUnderLoad requires cookies. 0 means 64.
	CookieThreshold int

	// MaxPendingHandshakes bounds the handshakes a listener holds while
	// waiting for the client to finish or confirm. 0 means 1024; above it,
	// new initiations are dropped.
	MaxPendingHandshakes int

	// RekeyAfterPackets is the number of packets sealed under one transport
	// key before the sender moves to the next (docs/SECURE.md §4.3). 0 means
	// 1<<24. Values below 16 are raised to 16.
	RekeyAfterPackets uint64

	// RekeyAfterTime is the age of a transport key after which the sender
	// moves to the next. 0 means 120 s.
	RekeyAfterTime time.Duration

	// HandshakeTimeout bounds a client's handshake (all retries together)
	// and how long a listener keeps an unfinished one. 0 means 5 s.
	HandshakeTimeout time.Duration
}

// Defaults of SecureConfig, applied when a field is zero.
const (
	defaultCookieThreshold      = 64
	defaultMaxPendingHandshakes = 1024
	defaultRekeyAfterPackets    = 1 << 24
	defaultRekeyAfterTime       = 120 * time.Second
	defaultHandshakeTimeout     = 5 * time.Second
	minRekeyAfterPackets        = 16
	argonTime                   = 3
	argonMemoryKiB              = 64 * 1024
	argonThreads                = 4
	minSaltLen                  = 8
)

// Errors of secure mode. Test for them with errors.Is; some arrive wrapped in
// a *PeerKeyError or *SecureConfigError.
var (
	// ErrHandshakeTimeout: no valid handshake response within
	// HandshakeTimeout. The server is down or unreachable, or (Noise IK and
	// PSK modes stay silent to a wrong key by design) its public key differs
	// from the pinned one, or its PSK from ours. It is a net.Error whose
	// Timeout method reports true.
	ErrHandshakeTimeout error = handshakeTimeoutError{}

	// ErrUnknownPeerKey: the server revealed a static key that is not
	// pinned, and no VerifyPeer accepted it.
	ErrUnknownPeerKey = errors.New("kcp: secure: peer's static key is not trusted (pin it in SecureConfig.PeerPublicKey or accept it in VerifyPeer)")

	// ErrPeerKeyRejected: VerifyPeer refused the peer's static key.
	ErrPeerKeyRejected = errors.New("kcp: secure: peer's static key rejected by VerifyPeer")

	// ErrCipherRefused: the listener does not accept the AEAD we proposed.
	ErrCipherRefused = errors.New("kcp: secure: the peer refused the proposed cipher")

	// ErrReplay: a transport packet whose counter was already accepted or is
	// older than the replay window.
	ErrReplay = errors.New("kcp: secure: replayed or too old packet")

	// ErrSecureAuth: a packet failed authentication (altered, forged,
	// reflected, or under keys we do not hold).
	ErrSecureAuth = errors.New("kcp: secure: packet failed authentication")

	// ErrSecureMalformed: a packet too short, with an unknown type, or with
	// reserved bits set.
	ErrSecureMalformed = errors.New("kcp: secure: malformed packet")

	// ErrKeyExhausted: the session's packet counter reached its limit
	// (2^63); a new session is needed.
	ErrKeyExhausted = errors.New("kcp: secure: packet counter exhausted; reconnect")

	// ErrPeerClosed: the peer closed the session with an authenticated
	// close packet.
	ErrPeerClosed = errors.New("kcp: secure: peer closed the session")

	// ErrInvalidSecureConfig: the SecureConfig cannot be used (see the
	// wrapping *SecureConfigError for which field).
	ErrInvalidSecureConfig = errors.New("kcp: secure: invalid SecureConfig")
)

// handshakeTimeoutError is the type of ErrHandshakeTimeout.
type handshakeTimeoutError struct{}

func (handshakeTimeoutError) Error() string {
	return "kcp: secure: handshake timed out (server unreachable, or its key or PSK differs from ours)"
}
func (handshakeTimeoutError) Timeout() bool   { return true }
func (handshakeTimeoutError) Temporary() bool { return true }

// PeerKeyError reports a handshake that failed on the peer's static key.
// errors.Is matches ErrUnknownPeerKey or ErrPeerKeyRejected, and the error
// VerifyPeer returned.
type PeerKeyError struct {
	// PublicKey is the peer's static public key as received.
	PublicKey []byte
	// Err is ErrUnknownPeerKey, or ErrPeerKeyRejected joined with VerifyPeer's
	// error.
	Err error
}

// Error returns the message with the key in hex.
func (e *PeerKeyError) Error() string {
	return fmt.Sprintf("%v (peer key %x)", e.Err, e.PublicKey)
}

// Unwrap returns Err.
func (e *PeerKeyError) Unwrap() error { return e.Err }

// SecureConfigError reports which SecureConfig field is unusable. errors.Is
// matches ErrInvalidSecureConfig.
type SecureConfigError struct {
	// Field is the SecureConfig field name.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error returns the field and the reason.
func (e *SecureConfigError) Error() string {
	return "kcp: secure: SecureConfig." + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidSecureConfig.
func (e *SecureConfigError) Unwrap() error { return ErrInvalidSecureConfig }

// GenerateSecureKey returns a new X25519 static key pair from crypto/rand:
// private and public are SecureKeySize bytes each. Give the private key to
// SecureConfig.PrivateKey on its owner and the public key to
// SecureConfig.PeerPublicKey on clients that pin it.
func GenerateSecureKey() (private, public []byte, err error) {
	kp, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return kp.Private, kp.Public, nil
}

// SecurePublicKey returns the X25519 public key of a static private key.
func SecurePublicKey(private []byte) ([]byte, error) {
	if len(private) != SecureKeySize {
		return nil, &SecureConfigError{"PrivateKey", fmt.Sprintf("%d bytes, want %d", len(private), SecureKeySize)}
	}
	return curve25519.X25519(private, curve25519.Basepoint)
}

// DeriveSecurePSK derives a pre-shared key from a passphrase with Argon2id
// (t=3, 64 MiB, 4 lanes; RFC 9106's second recommended setting) over a
// per-deployment salt of at least 8 bytes. It takes tens of milliseconds and
// 64 MiB: derive once and keep the result.
func DeriveSecurePSK(passphrase, salt []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, &SecureConfigError{"Passphrase", "empty"}
	}
	if len(salt) < minSaltLen {
		return nil, &SecureConfigError{"Salt", fmt.Sprintf("%d bytes, want at least %d", len(salt), minSaltLen)}
	}
	return argon2.IDKey(passphrase, salt, argonTime, argonMemoryKiB, argonThreads, SecureKeySize), nil
}

// secureParams is a validated SecureConfig with defaults applied, shared by
// every handshake of one Dial or Listener. Read-only after newSecureParams.
type secureParams struct {
	static     noise.DHKey      // zero without a static key
	staticECDH *ecdh.PrivateKey // static's private key for crypto/ecdh; nil without
	peer       []byte           // pinned server key (client)
	verify     func([]byte) error
	psk        []byte // nil without a PSK
	cipher     SecureCipher
	cookie     CookiePolicy
	cookieLoad int
	maxPending int
	rekeyPkts  uint64
	rekeyTime  time.Duration
	hsTimeout  time.Duration
	rand       io.Reader              // ephemeral keys; crypto/rand unless a test sets it
	macKeys    [patternNN + 1]macKeys // by pattern id; set where usable
}

// macKeys are K1 and Kc of docs/SECURE.md §2.1 for one pattern.
type macKeys struct {
	ok     bool
	mac1   [32]byte
	cookie [32]byte
}

// newSecureParams validates cfg and derives what the handshakes need.
// listener selects which fields are required.
func newSecureParams(cfg *SecureConfig, listener bool) (*secureParams, error) {
	if cfg == nil {
		return nil, &SecureConfigError{"", "nil"}
	}
	p := &secureParams{
		verify:     cfg.VerifyPeer,
		cipher:     cfg.Cipher,
		cookie:     cfg.Cookie,
		cookieLoad: cfg.CookieThreshold,
		maxPending: cfg.MaxPendingHandshakes,
		rekeyPkts:  cfg.RekeyAfterPackets,
		rekeyTime:  cfg.RekeyAfterTime,
		hsTimeout:  cfg.HandshakeTimeout,
		rand:       rand.Reader,
	}
	if p.cipher > SecureAES256GCM {
		return nil, &SecureConfigError{"Cipher", "unknown cipher " + p.cipher.String()}
	}
	if p.cookie < CookieUnderLoad || p.cookie > CookieNever {
		return nil, &SecureConfigError{"Cookie", fmt.Sprintf("unknown policy %d", p.cookie)}
	}
	if p.cookieLoad <= 0 {
		p.cookieLoad = defaultCookieThreshold
	}
	if p.maxPending <= 0 {
		p.maxPending = defaultMaxPendingHandshakes
	}
	if p.rekeyPkts == 0 {
		p.rekeyPkts = defaultRekeyAfterPackets
	}
	if p.rekeyPkts < minRekeyAfterPackets {
		p.rekeyPkts = minRekeyAfterPackets
	}
	if p.rekeyTime <= 0 {
		p.rekeyTime = defaultRekeyAfterTime
	}
	if p.hsTimeout <= 0 {
		p.hsTimeout = defaultHandshakeTimeout
	}
	if len(cfg.PrivateKey) > 0 {
		pub, err := SecurePublicKey(cfg.PrivateKey)
		if err != nil {
			return nil, err
		}
		p.static = noise.DHKey{Private: append([]byte(nil), cfg.PrivateKey...), Public: pub}
		if p.staticECDH, err = staticECDHKey(p.static.Private); err != nil {
			return nil, err
		}
	}
	switch {
	case len(cfg.PresharedKey) > 0:
		if len(cfg.PresharedKey) != SecureKeySize {
			return nil, &SecureConfigError{"PresharedKey", fmt.Sprintf("%d bytes, want %d", len(cfg.PresharedKey), SecureKeySize)}
		}
		p.psk = append([]byte(nil), cfg.PresharedKey...)
	case len(cfg.Passphrase) > 0 || len(cfg.Salt) > 0:
		psk, err := DeriveSecurePSK(cfg.Passphrase, cfg.Salt)
		if err != nil {
			return nil, err
		}
		p.psk = psk
	}
	if !listener && len(cfg.PeerPublicKey) > 0 {
		if len(cfg.PeerPublicKey) != SecureKeySize {
			return nil, &SecureConfigError{"PeerPublicKey", fmt.Sprintf("%d bytes, want %d", len(cfg.PeerPublicKey), SecureKeySize)}
		}
		if p.static.Private == nil {
			return nil, &SecureConfigError{"PrivateKey", "required with PeerPublicKey (Noise IK authenticates both ends)"}
		}
		p.peer = append([]byte(nil), cfg.PeerPublicKey...)
	}
	if p.static.Private == nil && p.psk == nil {
		return nil, &SecureConfigError{"PrivateKey", "neither a static key nor a PSK is set"}
	}
	xx := []byte("kcpx-secure/v1/XX")
	if p.psk != nil {
		xx = p.psk
		p.macKeys[patternNN] = newMacKeys(p.psk)
	}
	p.macKeys[patternXX] = newMacKeys(xx)
	switch {
	case p.peer != nil:
		p.macKeys[patternIK] = newMacKeys(p.peer)
	case listener && p.static.Public != nil:
		p.macKeys[patternIK] = newMacKeys(p.static.Public)
	}
	return p, nil
}

// pattern returns the handshake pattern a client with these params uses.
func (p *secureParams) pattern() byte {
	switch {
	case p.peer != nil:
		return patternIK
	case p.static.Private != nil:
		return patternXX
	default:
		return patternNN
	}
}

// accepts reports whether a listener with these params takes a handshake of
// pattern id.
func (p *secureParams) accepts(id byte) bool {
	switch id {
	case patternIK, patternXX:
		return p.static.Private != nil
	case patternNN:
		return p.psk != nil
	}
	return false
}
