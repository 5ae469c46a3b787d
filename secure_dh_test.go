package kcp

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// The handshake's DH function must agree with noise.DH25519 on every
// input: keys from the same random bytes, the same shared secrets through
// the static, ephemeral and uncached paths, and the same refusal of a
// low-order peer key.
func TestHandshakeDHMatchesNoise(t *testing.T) {
	static, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := staticECDHKey(static.Private)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		seed := make([]byte, 32)
		rand.Read(seed)
		d := &handshakeDH{static: sk, staticPriv: static.Private}
		eph, err := d.GenerateKeypair(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		want, err := noise.DH25519.GenerateKeypair(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(eph.Private, want.Private) || !bytes.Equal(eph.Public, want.Public) {
			t.Fatalf("run %d: key pair %x/%x, noise made %x/%x", i, eph.Private, eph.Public, want.Private, want.Public)
		}
		peer, _ := noise.DH25519.GenerateKeypair(rand.Reader)
		other, _ := noise.DH25519.GenerateKeypair(rand.Reader)
		for name, priv := range map[string][]byte{"static": static.Private, "ephemeral": eph.Private, "uncached": other.Private} {
			got, err := d.DH(priv, peer.Public)
			if err != nil {
				t.Fatalf("run %d, %s: %v", i, name, err)
			}
			exp, err := noise.DH25519.DH(priv, peer.Public)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, exp) {
				t.Fatalf("run %d, %s: secret %x, noise %x", i, name, got, exp)
			}
		}
	}
	// A point of small order (here the identity, u = 0) gives an all-zero
	// secret: both refuse it.
	zero := make([]byte, 32)
	d := &handshakeDH{static: sk, staticPriv: static.Private}
	if _, err := d.DH(static.Private, zero); err == nil {
		t.Fatal("low-order peer key accepted")
	}
	if _, err := noise.DH25519.DH(static.Private, zero); err == nil {
		t.Fatal("noise accepted a low-order key: the reference changed")
	}
	if d.DHName() != noise.DH25519.DHName() || d.DHLen() != noise.DH25519.DHLen() {
		t.Fatalf("name/len %s/%d, noise %s/%d", d.DHName(), d.DHLen(), noise.DH25519.DHName(), noise.DH25519.DHLen())
	}
}
