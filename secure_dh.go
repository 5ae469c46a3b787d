package kcp

import (
	"crypto/ecdh"
	"crypto/subtle"
	"io"

	"github.com/flynn/noise"
)

// handshakeDH is Noise's "25519" DH function (RFC 7748 X25519) for one
// handshake, computed with crypto/ecdh. It keeps the ecdh form of the two
// private keys a handshake uses, the end's static key and the handshake's
// ephemeral key, so every DH costs one scalar multiplication. noise.DH25519
// goes through x/crypto's X25519, which rebuilds an ecdh private key, and
// with it the public key (a second multiplication), on every call: an IK
// handshake took 18 multiplications over both ends instead of 10.
//
// Results are identical to noise.DH25519's, errors included (a low-order
// peer key gives an all-zero secret, which both refuse), and key generation
// reads the same 32 bytes from the handshake's random source, so recorded
// handshakes replay byte for byte. One value serves one handshake state; it
// is not shared between goroutines while the ephemeral key changes.
type handshakeDH struct {
	static     *ecdh.PrivateKey // nil without a static key; read-only, shared
	staticPriv []byte
	eph        *ecdh.PrivateKey // the last key GenerateKeypair made
}

// newHandshakeDH returns the DH function of one handshake of p.
func (p *secureParams) newHandshakeDH() *handshakeDH {
	return &handshakeDH{static: p.staticECDH, staticPriv: p.static.Private}
}

// staticECDHKey converts a static private key once, at configuration.
func staticECDHKey(priv []byte) (*ecdh.PrivateKey, error) {
	return ecdh.X25519().NewPrivateKey(priv)
}

func (d *handshakeDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var priv [32]byte
	if _, err := io.ReadFull(rng, priv[:]); err != nil {
		return noise.DHKey{}, err
	}
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	d.eph = k
	return noise.DHKey{Private: priv[:], Public: k.PublicKey().Bytes()}, nil
}

func (d *handshakeDH) DH(privkey, pubkey []byte) ([]byte, error) {
	var k *ecdh.PrivateKey
	switch {
	case d.static != nil && subtle.ConstantTimeCompare(privkey, d.staticPriv) == 1:
		k = d.static
	case d.eph != nil && subtle.ConstantTimeCompare(privkey, d.eph.Bytes()) == 1:
		k = d.eph
	default:
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(privkey); err != nil {
			return nil, err
		}
	}
	pub, err := ecdh.X25519().NewPublicKey(pubkey)
	if err != nil {
		return nil, err
	}
	return k.ECDH(pub)
}

func (d *handshakeDH) DHLen() int     { return 32 }
func (d *handshakeDH) DHName() string { return "25519" }
