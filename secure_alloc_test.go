//go:build !race

package kcp

import (
	"io"
	"testing"
)

// This file is left out under -race: the race detector allocates.

// TestSecurePathAllocs: a steady echo of 1 KiB messages between secure
// sessions allocates nothing per round trip, both ends and every goroutine
// counted: the listener's and the client's readers opening through their
// filters, their senders sealing into the writers' slots.
func TestSecurePathAllocs(t *testing.T) {
	leakCheck(t)
	k := secureTestKeys()
	for _, c := range []SecureCipher{SecureAES256GCM, SecureChaCha20Poly1305} {
		t.Run(c.String(), func(t *testing.T) {
			l, err := ListenSecure("127.0.0.1:0", &SecureConfig{PrivateKey: k.srvPriv})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			a, b := securePair(t, l, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: c}, 0, 0)
			defer a.Close()
			defer b.Close()
			fast(a)
			fast(b)
			go echoServer(b)
			msg := randBytes(31, 1024)
			buf := make([]byte, len(msg))
			rt := func() {
				if _, err := a.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(a, buf); err != nil {
					t.Fatal(err)
				}
			}
			for range 200 { // warm the pools and queues
				rt()
			}
			if n := testing.AllocsPerRun(500, rt); n > 0 {
				t.Errorf("%.2f allocations per round trip", n)
			}
		})
	}
}
