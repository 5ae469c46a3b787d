package kcp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// Deterministic secure endpoints for fuzzing: fixed static keys and a seeded
// source for ephemeral keys, so the real packets in the seed corpora stay
// valid from one run to the next and the fuzzer reaches the success paths.

var fuzzNow = time.Unix(1_700_000_000, 0)

// fuzzKey returns a fixed 32-byte private key.
func fuzzKey(b byte) []byte { return bytes.Repeat([]byte{b}, SecureKeySize) }

// detReader is a seeded, deterministic io.Reader.
func detReader(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

// fuzzParams returns deterministic params for one end of a pattern.
func fuzzParams(tb testing.TB, pattern byte, listener bool, seed uint64) *secureParams {
	tb.Helper()
	srvPub, err := SecurePublicKey(fuzzKey(2))
	if err != nil {
		tb.Fatal(err)
	}
	var cfg *SecureConfig
	switch {
	case listener && pattern == patternNN:
		cfg = &SecureConfig{PresharedKey: testPSK, Cookie: CookieNever}
	case listener:
		cfg = &SecureConfig{PrivateKey: fuzzKey(2), Cookie: CookieNever}
	case pattern == patternIK:
		cfg = &SecureConfig{PrivateKey: fuzzKey(1), PeerPublicKey: srvPub}
	case pattern == patternXX:
		cfg = &SecureConfig{PrivateKey: fuzzKey(1), VerifyPeer: func([]byte) error { return nil }}
	default:
		cfg = &SecureConfig{PresharedKey: testPSK}
	}
	p := mustParams(tb, cfg, listener)
	p.rand = detReader(seed)
	return p
}

// fuzzInitiation returns a deterministic initiator that has sent its
// initiation, and that initiation.
func fuzzInitiation(tb testing.TB, pattern byte) (*secureInitiator, []byte) {
	tb.Helper()
	ini := newSecureInitiator(fuzzParams(tb, pattern, false, 1))
	init, err := ini.initiation(0x01020304, fuzzNow)
	if err != nil {
		tb.Fatal(err)
	}
	return ini, init
}

// fuzzResponse returns the deterministic responder's answer to pattern's
// deterministic initiation, with the responder's handshake.
func fuzzResponse(tb testing.TB, pattern byte) ([]byte, *responderHandshake, *secureParams) {
	tb.Helper()
	_, init := fuzzInitiation(tb, pattern)
	srv := fuzzParams(tb, pattern, true, 2)
	resp, rh, err := newSecureResponder(srv).handleInitiation(init, testSrc, 0x0a0b0c0d, 0, fuzzNow)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, rh, srv
}

// knownHandshakeErr reports whether err is one the handshake functions may
// return for bytes from the network.
func knownHandshakeErr(err error) bool {
	return errors.Is(err, ErrSecureMalformed) || errors.Is(err, ErrSecureAuth) ||
		errors.Is(err, ErrCipherRefused) || errors.Is(err, ErrPeerKeyRejected) ||
		errors.Is(err, ErrUnknownPeerKey) || errors.Is(err, errHandshakeBusy)
}

var fuzzPatterns = []byte{patternIK, patternXX, patternNN}

// FuzzSecureInitiation feeds arbitrary bytes to a listener's initiation
// handler (static-key and PSK listeners). Properties: no panic; only known
// errors; a handshake begins only with a response, and no reply is larger
// than the datagram that drew it (amplification ≤ 1×).
func FuzzSecureInitiation(f *testing.F) {
	for _, pat := range fuzzPatterns {
		_, init := fuzzInitiation(f, pat)
		f.Add(init)
		f.Add(init[:len(init)-1])
	}
	f.Add([]byte{secInitiation, patternIK, 0, 0, 0xF2, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pat := range []byte{patternIK, patternNN} {
			r := newSecureResponder(fuzzParams(t, pat, true, 2))
			reply, rh, err := r.handleInitiation(bytes.Clone(data), testSrc, 9, 0, fuzzNow)
			if err != nil && !knownHandshakeErr(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if rh != nil && (reply == nil || err != nil) {
				t.Fatalf("handshake state without a response (%v)", err)
			}
			if len(reply) > len(data) {
				t.Fatalf("%d-byte reply to a %d-byte datagram", len(reply), len(data))
			}
		}
	})
}

// FuzzSecureResponse feeds arbitrary bytes to an initiator waiting for its
// response, as a response and as a cookie reply. Properties: no panic; only
// known errors; keys come only from a response of exactly the right length.
func FuzzSecureResponse(f *testing.F) {
	for _, pat := range fuzzPatterns {
		resp, _, _ := fuzzResponse(f, pat)
		f.Add(pat, resp)
	}
	cookieSrv := fuzzParams(f, patternIK, true, 2)
	cookieSrv.cookie = CookieAlways
	_, init := fuzzInitiation(f, patternIK)
	cookie, _, _ := newSecureResponder(cookieSrv).handleInitiation(init, testSrc, 1, 0, fuzzNow)
	f.Add(byte(patternIK), cookie)
	f.Add(byte(patternNN), []byte{secResponse, patternNN, 0, 0, 0xF2, 0, 4, 3, 2, 1})
	f.Fuzz(func(t *testing.T, pat byte, data []byte) {
		pat = fuzzPatterns[int(pat)%len(fuzzPatterns)]
		ini, _ := fuzzInitiation(t, pat)
		if err := ini.consumeCookieReply(bytes.Clone(data), fuzzNow); err != nil && !knownHandshakeErr(err) {
			t.Fatalf("cookie reply: unexpected error %v", err)
		}
		kp, fin, err := ini.consumeResponse(bytes.Clone(data), fuzzNow)
		switch {
		case err != nil && !knownHandshakeErr(err):
			t.Fatalf("response: unexpected error %v", err)
		case err == nil && (kp == nil || len(data) != responseLen(pat, ini.p.psk != nil)):
			t.Fatalf("keys from a %d-byte response", len(data))
		case err == nil && (pat == patternXX) != (fin != nil):
			t.Fatal("finish present iff XX violated")
		}
		if _, _, err := ini.consumeResponse(data, fuzzNow); err == nil {
			t.Fatal("a second response accepted for one handshake")
		}
	})
}

// FuzzSecureFinish feeds arbitrary bytes to a listener waiting for an XX
// finish. Properties: no panic; only known errors; keys only from a finish
// of the right length.
func FuzzSecureFinish(f *testing.F) {
	ini, _ := fuzzInitiation(f, patternXX)
	resp, _, _ := fuzzResponse(f, patternXX)
	_, fin, err := ini.consumeResponse(resp, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fin)
	f.Add(fin[:10])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, rh, srv := fuzzResponse(t, patternXX)
		kp, err := rh.consumeFinish(srv, bytes.Clone(data), fuzzNow)
		if err != nil && !knownHandshakeErr(err) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && (kp == nil || len(data) != finishLen(false)) {
			t.Fatalf("keys from a %d-byte finish", len(data))
		}
	})
}

// fuzzKeypairs returns a fixed receiving keypair per cipher and its sender,
// with epochs every 16 packets.
func fuzzKeypairs(tb testing.TB) (recv, send []*secureKeypair) {
	tb.Helper()
	p := mustParams(tb, &SecureConfig{PresharedKey: testPSK, RekeyAfterPackets: 16}, false)
	suite := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
	h := bytes.Repeat([]byte{7}, 32)
	for _, c := range []SecureCipher{SecureChaCha20Poly1305, SecureAES256GCM} {
		mk := func(initiator bool) *secureKeypair {
			cs1 := noise.UnsafeNewCipherState(suite, [32]byte{1}, 0)
			cs2 := noise.UnsafeNewCipherState(suite, [32]byte{2}, 0)
			kp, err := newSecureKeypair(p, initiator, 0x11223344, 0x11223344, c, h, cs1, cs2, fuzzNow)
			if err != nil {
				tb.Fatal(err)
			}
			return kp
		}
		recv, send = append(recv, mk(false)), append(send, mk(true))
	}
	return recv, send
}

// FuzzSecureOpen feeds arbitrary bytes to a session's transport opener (both
// AEADs) and seals the bytes as a payload. Properties: no panic; only known
// errors; a packet that opened is refused the second time (ErrReplay); the
// plaintext lies inside the packet; seal then open gives the payload back.
func FuzzSecureOpen(f *testing.F) {
	_, send := fuzzKeypairs(f)
	for _, kp := range send {
		for i := 0; i < 40; i++ { // past two epoch changes
			pkt, err := kp.seal(make([]byte, 0, 64), byte(secData+i%2), []byte("fuzz seed payload"), fuzzNow)
			if err != nil {
				f.Fatal(err)
			}
			if i%13 == 0 || i == 39 {
				f.Add(pkt)
			}
		}
	}
	f.Add([]byte{secData, 0, 0, 0, 0xF2, 0, 0x44, 0x33, 0x22, 0x11})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		recv, _ := fuzzKeypairs(t)
		rtRecv, rtSend := fuzzKeypairs(t)
		for i, kp := range recv {
			pkt := bytes.Clone(data)
			typ, plain, err := kp.open(pkt, fuzzNow)
			switch {
			case err != nil:
				if !errors.Is(err, ErrSecureMalformed) && !errors.Is(err, ErrSecureAuth) && !errors.Is(err, ErrReplay) {
					t.Fatalf("unexpected error %v", err)
				}
			case typ != secData && typ != secControl:
				t.Fatalf("opened type %d", typ)
			case len(plain) != len(data)-SecureOverhead || len(plain) > 0 && &plain[0] != &pkt[secHeaderLen]:
				t.Fatal("plaintext is not pkt[header:len-tag]")
			default:
				if _, _, err := kp.open(bytes.Clone(data), fuzzNow); !errors.Is(err, ErrReplay) {
					t.Fatalf("second open of the same packet: %v, want ErrReplay", err)
				}
			}
			sealed, err := rtSend[i].seal(make([]byte, 0, len(data)+SecureOverhead), secData, data, fuzzNow)
			if err != nil {
				t.Fatal(err)
			}
			if _, got, err := rtRecv[i].open(sealed, fuzzNow); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("seal/open round trip: %v", err)
			}
		}
	})
}

// TestSecureFuzzSeedsValid checks that the deterministic endpoints make the
// real packets of the seed corpora succeed, so the fuzzers start from the
// success paths (a change to the handshake shows up here first).
func TestSecureFuzzSeedsValid(t *testing.T) {
	for _, pat := range fuzzPatterns {
		resp, rh, srv := fuzzResponse(t, pat)
		if rh == nil {
			t.Fatalf("pattern %d: no handshake", pat)
		}
		again, _, _ := fuzzResponse(t, pat)
		if !bytes.Equal(resp, again) {
			t.Fatalf("pattern %d: responses differ between runs", pat)
		}
		ini, _ := fuzzInitiation(t, pat)
		kp, fin, err := ini.consumeResponse(resp, fuzzNow)
		if err != nil || kp == nil {
			t.Fatalf("pattern %d: seed response refused: %v", pat, err)
		}
		if fin != nil {
			if _, err := rh.consumeFinish(srv, fin, fuzzNow); err != nil {
				t.Fatalf("seed finish refused: %v", err)
			}
		}
	}
	recv, send := fuzzKeypairs(t)
	for i := range recv {
		for j := 0; j < 40; j++ {
			pkt, _ := send[i].seal(make([]byte, 0, 64), secData, []byte("x"), fuzzNow)
			if _, _, err := recv[i].open(pkt, fuzzNow); err != nil {
				t.Fatalf("cipher %d packet %d: %v", i, j, err)
			}
		}
	}
}
