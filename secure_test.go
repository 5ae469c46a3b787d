package kcp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// secureTestKeys are static key pairs made once per test binary.
var secureTestKeys = sync.OnceValue(func() (k struct{ srvPriv, srvPub, cliPriv, cliPub, otherPub []byte }) {
	var err error
	if k.srvPriv, k.srvPub, err = GenerateSecureKey(); err != nil {
		panic(err)
	}
	if k.cliPriv, k.cliPub, err = GenerateSecureKey(); err != nil {
		panic(err)
	}
	if _, k.otherPub, err = GenerateSecureKey(); err != nil {
		panic(err)
	}
	return k
})

// testPSK is a fixed pre-shared key (Argon2id is exercised once, in
// TestDeriveSecurePSK).
var testPSK = bytes.Repeat([]byte{0x5a}, SecureKeySize)

var testSrc = netip.MustParseAddrPort("192.0.2.7:40000")

// mustParams validates cfg or fails the test.
func mustParams(t testing.TB, cfg *SecureConfig, listener bool) *secureParams {
	t.Helper()
	p, err := newSecureParams(cfg, listener)
	if err != nil {
		t.Fatalf("newSecureParams: %v", err)
	}
	return p
}

// secureCase is one handshake configuration.
type secureCase struct {
	name     string
	cli, srv *SecureConfig
	pattern  byte
}

// secureCases covers every pattern, with and without a PSK, both ciphers.
func secureCases() []secureCase {
	k := secureTestKeys()
	accept := func([]byte) error { return nil }
	var out []secureCase
	for _, c := range []SecureCipher{SecureChaCha20Poly1305, SecureAES256GCM} {
		out = append(out,
			secureCase{"IK", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: c}, &SecureConfig{PrivateKey: k.srvPriv}, patternIK},
			secureCase{"IKpsk2", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, PresharedKey: testPSK, Cipher: c}, &SecureConfig{PrivateKey: k.srvPriv, PresharedKey: testPSK}, patternIK},
			secureCase{"XX", &SecureConfig{PrivateKey: k.cliPriv, VerifyPeer: accept, Cipher: c}, &SecureConfig{PrivateKey: k.srvPriv}, patternXX},
			secureCase{"XXpsk3", &SecureConfig{PrivateKey: k.cliPriv, VerifyPeer: accept, PresharedKey: testPSK, Cipher: c}, &SecureConfig{PrivateKey: k.srvPriv, PresharedKey: testPSK}, patternXX},
			secureCase{"NNpsk0", &SecureConfig{PresharedKey: testPSK, Cipher: c}, &SecureConfig{PresharedKey: testPSK}, patternNN},
		)
		for i := len(out) - 5; i < len(out); i++ {
			out[i].name += "/" + c.String()
		}
	}
	return out
}

// handshakeResult is what runHandshake observed.
type handshakeResult struct {
	cli, srv         *secureKeypair
	roundTrips       int
	init, resp, fin  []byte
	cookieReplies    int
	maxReplyOverInit float64
}

// runHandshake drives one handshake between cli and srv in memory. pending is
// the handshake count the listener reports (for the cookie policy).
func runHandshake(t testing.TB, cli, srv *secureParams, pending int) (handshakeResult, error) {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	ini := newSecureInitiator(cli)
	resp := newSecureResponder(srv)
	var r handshakeResult
	for attempt := 0; attempt < 3; attempt++ {
		init, err := ini.initiation(uint32(100+attempt), now)
		if err != nil {
			return r, err
		}
		r.init = init
		r.roundTrips++
		reply, rh, err := resp.handleInitiation(init, testSrc, 7, pending, now)
		if err != nil {
			return r, err
		}
		if reply == nil {
			return r, errors.New("responder stayed silent")
		}
		if ratio := float64(len(reply)) / float64(len(init)); ratio > r.maxReplyOverInit {
			r.maxReplyOverInit = ratio
		}
		if rh == nil && reply[0] == secCookie {
			r.cookieReplies++
			if err := ini.consumeCookieReply(reply, now); err != nil {
				return r, err
			}
			continue
		}
		r.resp = reply
		kp, fin, err := ini.consumeResponse(reply, now)
		if err != nil {
			return r, err
		}
		if rh == nil {
			return r, errors.New("response without responder state")
		}
		r.cli, r.fin = kp, fin
		if fin != nil {
			if r.srv, err = rh.consumeFinish(srv, fin, now); err != nil {
				return r, err
			}
		} else {
			r.srv = rh.keys
		}
		return r, nil
	}
	return r, errors.New("no handshake after 3 attempts")
}

// sealOpen seals payload from a to b and opens it, returning the plaintext.
func sealOpen(t testing.TB, a, b *secureKeypair, typ byte, payload []byte, now time.Time) ([]byte, error) {
	t.Helper()
	pkt, err := a.seal(make([]byte, 0, len(payload)+SecureOverhead), typ, payload, now)
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	gotTyp, plain, err := b.open(pkt, now)
	if err == nil && gotTyp != typ {
		t.Fatalf("type %d, sealed %d", gotTyp, typ)
	}
	return plain, err
}

func TestSecureHandshake(t *testing.T) {
	for _, tc := range secureCases() {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := mustParams(t, tc.cli, false), mustParams(t, tc.srv, true)
			if got := cli.pattern(); got != tc.pattern {
				t.Fatalf("pattern %d, want %d", got, tc.pattern)
			}
			r, err := runHandshake(t, cli, srv, 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.roundTrips != 1 {
				t.Errorf("%d round trips before data, want 1", r.roundTrips)
			}
			if r.maxReplyOverInit > 1 {
				t.Errorf("response %.2f× the initiation, want ≤ 1×", r.maxReplyOverInit)
			}
			if r.cli.cipher != tc.cli.Cipher || r.srv.cipher != tc.cli.Cipher {
				t.Errorf("ciphers %v/%v, want %v", r.cli.cipher, r.srv.cipher, tc.cli.Cipher)
			}
			if r.cli.remoteIndex != r.srv.localIndex || r.srv.remoteIndex != r.cli.localIndex {
				t.Errorf("indices do not pair: cli %d→%d srv %d→%d", r.cli.localIndex, r.cli.remoteIndex, r.srv.localIndex, r.srv.remoteIndex)
			}
			now := time.Unix(1_700_000_001, 0)
			for i, dir := range [][2]*secureKeypair{{r.cli, r.srv}, {r.srv, r.cli}} {
				msg := []byte(fmt.Sprintf("direction %d", i))
				got, err := sealOpen(t, dir[0], dir[1], secData, msg, now)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("direction %d: %q, %v", i, got, err)
				}
			}
			if !r.srv.confirmed() || !r.cli.confirmed() {
				t.Error("keys not confirmed after a packet each way")
			}
		})
	}
}

// TestSecurePacketSizes pins the packet lengths of docs/SECURE.md §2.1.
func TestSecurePacketSizes(t *testing.T) {
	for _, tc := range []struct {
		pattern         byte
		psk             bool
		init, resp, fin int
	}{
		{patternIK, false, 218, 64, 0},
		{patternIK, true, 218, 64, 0},
		{patternXX, false, 154, 112, 76},
		{patternXX, true, 170, 112, 76},
		{patternNN, true, 170, 64, 0},
	} {
		if got := initiationLen(tc.pattern, tc.psk); got != tc.init {
			t.Errorf("pattern %d psk %v: initiation %d, want %d", tc.pattern, tc.psk, got, tc.init)
		}
		if got := responseLen(tc.pattern, tc.psk); got != tc.resp {
			t.Errorf("pattern %d psk %v: response %d, want %d", tc.pattern, tc.psk, got, tc.resp)
		}
		if tc.fin != 0 && finishLen(tc.psk) != tc.fin {
			t.Errorf("finish %d, want %d", finishLen(tc.psk), tc.fin)
		}
	}
	if secCookieReplyLen != 66 || SecureOverhead != 34 {
		t.Errorf("cookie reply %d, overhead %d; want 66, 34", secCookieReplyLen, SecureOverhead)
	}
	for _, tc := range secureCases() {
		r, err := runHandshake(t, mustParams(t, tc.cli, false), mustParams(t, tc.srv, true), 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		psk := tc.srv.PresharedKey != nil
		if len(r.init) != initiationLen(tc.pattern, psk) || len(r.resp) != responseLen(tc.pattern, psk) {
			t.Errorf("%s: sent %d/%d bytes, spec says %d/%d", tc.name, len(r.init), len(r.resp),
				initiationLen(tc.pattern, psk), responseLen(tc.pattern, psk))
		}
		if !bytes.Equal(r.init[:6], []byte{secInitiation, tc.pattern, 0, 0, 0xF2, 0}) {
			t.Errorf("%s: initiation prefix % x", tc.name, r.init[:6])
		}
	}
}

// TestSecureForwardSecrecy: two handshakes between the same static keys use
// different ephemeral keys and yield unrelated transport keys.
func TestSecureForwardSecrecy(t *testing.T) {
	k := secureTestKeys()
	cli := mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false)
	srv := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv}, true)
	a, err := runHandshake(t, cli, srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := runHandshake(t, cli, srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.init[10:42], b.init[10:42]) {
		t.Error("initiator ephemeral key reused")
	}
	if bytes.Equal(a.resp[14:46], b.resp[14:46]) {
		t.Error("responder ephemeral key reused")
	}
	now := time.Unix(1_700_000_001, 0)
	// Same counter (0), same plaintext: different keys give different bytes,
	// and neither session opens the other's packet.
	pa, _ := a.cli.seal(make([]byte, 0, 64), secData, []byte("same"), now)
	pb, _ := b.cli.seal(make([]byte, 0, 64), secData, []byte("same"), now)
	if bytes.Equal(pa[secHeaderLen:], pb[secHeaderLen:]) {
		t.Error("two sessions sealed identical ciphertexts")
	}
	b.srv.localIndex = a.srv.localIndex // same index, so only the key differs
	if _, _, err := b.srv.open(pa, now); !errors.Is(err, ErrSecureAuth) {
		t.Errorf("session b opened session a's packet: %v", err)
	}
}

func TestSecureKeyErrors(t *testing.T) {
	k := secureTestKeys()
	srv := &SecureConfig{PrivateKey: k.srvPriv}
	refuse := errors.New("not on the list")
	for _, tc := range []struct {
		name     string
		cli, srv *SecureConfig
		want     []error
	}{
		{"pinned key mismatch", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.otherPub}, srv, []error{ErrSecureAuth}},
		{"unpinned server key", &SecureConfig{PrivateKey: k.cliPriv}, srv, []error{ErrUnknownPeerKey}},
		{"VerifyPeer refuses server", &SecureConfig{PrivateKey: k.cliPriv, VerifyPeer: func([]byte) error { return refuse }}, srv, []error{ErrPeerKeyRejected, refuse}},
		{"server refuses client", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub},
			&SecureConfig{PrivateKey: k.srvPriv, VerifyPeer: func([]byte) error { return refuse }}, []error{ErrPeerKeyRejected, refuse}},
		{"PSK mismatch", &SecureConfig{PresharedKey: bytes.Repeat([]byte{1}, 32)}, &SecureConfig{PresharedKey: testPSK}, []error{ErrSecureAuth}},
		{"PSK missing on client", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub},
			&SecureConfig{PrivateKey: k.srvPriv, PresharedKey: testPSK}, []error{ErrSecureAuth}},
		{"cipher refused", &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: SecureAES256GCM},
			&SecureConfig{PrivateKey: k.srvPriv, Cipher: SecureChaCha20Poly1305}, []error{ErrCipherRefused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runHandshake(t, mustParams(t, tc.cli, false), mustParams(t, tc.srv, true), 0)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v, want it to match %v", err, w)
				}
			}
		})
	}
	var pke *PeerKeyError
	_, err := runHandshake(t, mustParams(t, &SecureConfig{PrivateKey: k.cliPriv}, false), mustParams(t, srv, true), 0)
	if !errors.As(err, &pke) || !bytes.Equal(pke.PublicKey, k.srvPub) {
		t.Errorf("unpinned key: %v, want a *PeerKeyError carrying the server key", err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(ErrHandshakeTimeout, &te) || !te.Timeout() {
		t.Error("ErrHandshakeTimeout is not a timeout")
	}
	if _, ok := ErrHandshakeTimeout.(net.Error); !ok {
		t.Error("ErrHandshakeTimeout is not a net.Error")
	}
}

func TestSecureConfigErrors(t *testing.T) {
	k := secureTestKeys()
	for _, tc := range []struct {
		cfg      *SecureConfig
		listener bool
		field    string
	}{
		{nil, false, ""},
		{&SecureConfig{}, true, "PrivateKey"},
		{&SecureConfig{PrivateKey: k.cliPriv[:31]}, false, "PrivateKey"},
		{&SecureConfig{PeerPublicKey: k.srvPub}, false, "PrivateKey"},
		{&SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub[:8]}, false, "PeerPublicKey"},
		{&SecureConfig{PresharedKey: []byte("short")}, false, "PresharedKey"},
		{&SecureConfig{Passphrase: []byte("x"), Salt: []byte("salt")}, false, "Salt"},
		{&SecureConfig{Salt: []byte("12345678")}, false, "Passphrase"},
		{&SecureConfig{PresharedKey: testPSK, Cipher: 9}, false, "Cipher"},
		{&SecureConfig{PresharedKey: testPSK, Cookie: 7}, true, "Cookie"},
	} {
		_, err := newSecureParams(tc.cfg, tc.listener)
		var ce *SecureConfigError
		if !errors.Is(err, ErrInvalidSecureConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: %v, want a SecureConfigError on %q", tc.cfg, err, tc.field)
		}
	}
}

func TestDeriveSecurePSK(t *testing.T) {
	parallelTest(t)
	a, err := DeriveSecurePSK([]byte("correct horse"), []byte("deployment-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveSecurePSK([]byte("correct horse"), []byte("deployment-2"))
	if len(a) != SecureKeySize || bytes.Equal(a, b) {
		t.Fatalf("PSKs %x and %x: want 32 bytes, different per salt", a, b)
	}
	// Passphrase and Salt in the config give the same key as DeriveSecurePSK.
	p := mustParams(t, &SecureConfig{Passphrase: []byte("correct horse"), Salt: []byte("deployment-1")}, false)
	if !bytes.Equal(p.psk, a) {
		t.Error("SecureConfig.Passphrase derived another key")
	}
	srv := mustParams(t, &SecureConfig{PresharedKey: a}, true)
	if _, err := runHandshake(t, p, srv, 0); err != nil {
		t.Fatalf("passphrase client to PresharedKey server: %v", err)
	}
}

// flipEach calls f with a copy of pkt for every single-bit flip.
func flipEach(pkt []byte, f func(i int, mutated []byte)) {
	for i := 0; i < len(pkt)*8; i++ {
		m := bytes.Clone(pkt)
		m[i/8] ^= 1 << (i % 8)
		f(i, m)
	}
}

// TestSecureBitFlips: every single-bit change of a sample of every packet
// type is rejected.
func TestSecureBitFlips(t *testing.T) {
	parallelTest(t)
	k := secureTestKeys()
	now := time.Unix(1_700_000_001, 0)
	for _, tc := range secureCases()[:5] {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := mustParams(t, tc.cli, false), mustParams(t, tc.srv, true)
			r, err := runHandshake(t, cli, srv, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []byte{secData, secControl} {
				for _, size := range []int{0, 1, 300} {
					payload := make([]byte, size)
					pkt, _ := r.cli.seal(make([]byte, 0, size+SecureOverhead), typ, payload, now)
					flipEach(pkt, func(i int, m []byte) {
						if _, _, err := r.srv.open(m, now); err == nil {
							t.Fatalf("type %d size %d: bit %d flipped, still opened", typ, size, i)
						}
					})
					if _, _, err := r.srv.open(pkt, now); err != nil {
						t.Fatalf("genuine packet rejected after the flips: %v", err)
					}
				}
			}
			// Responses: each flip goes to a fresh handshake, which must fail.
			flipEach(r.resp, func(i int, m []byte) {
				if i%7 != 0 { // every 7th bit keeps this at a few hundred DHs
					return
				}
				ini := newSecureInitiator(cli)
				init, _ := ini.initiation(100, now)
				resp, _, err := newSecureResponder(srv).handleInitiation(init, testSrc, 7, 0, now)
				if err != nil {
					t.Fatal(err)
				}
				m = bytes.Clone(resp)
				m[i/8] ^= 1 << (i % 8)
				if _, _, err := ini.consumeResponse(m, now); err == nil {
					t.Fatalf("response bit %d flipped, accepted", i)
				}
			})
			if tc.pattern == patternXX {
				testFinishFlips(t, cli, srv, now)
			}
		})
	}
	// Initiations under CookieAlways (mac2 checked): every flip is refused.
	cli := mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false)
	srv := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv, Cookie: CookieAlways}, true)
	ini, resp := newSecureInitiator(cli), newSecureResponder(srv)
	init, _ := ini.initiation(100, now)
	reply, rh, err := resp.handleInitiation(init, testSrc, 7, 0, now)
	if err != nil || rh != nil || reply[0] != secCookie {
		t.Fatalf("no cookie reply under CookieAlways: %v %v", rh, err)
	}
	flipEach(reply, func(i int, m []byte) {
		if err := ini.consumeCookieReply(m, now); err == nil {
			t.Fatalf("cookie reply bit %d flipped, accepted", i)
		}
	})
	if err := ini.consumeCookieReply(reply, now); err != nil {
		t.Fatal(err)
	}
	init, _ = ini.initiation(101, now)
	flipEach(init, func(i int, m []byte) {
		if out, rh, err := resp.handleInitiation(m, testSrc, 7, 0, now); rh != nil || err == nil && out[0] != secCookie {
			t.Fatalf("initiation bit %d flipped, accepted", i)
		}
	})
	if _, rh, err := resp.handleInitiation(init, testSrc, 7, 0, now); rh == nil || err != nil {
		t.Fatalf("genuine initiation with cookie refused: %v", err)
	}
}

// testFinishFlips: a flipped finish is refused. A flip past the header ends
// that handshake (the genuine finish is refused after it; the initiator
// starts over); a flip in the header is dropped before Noise sees it.
func testFinishFlips(t *testing.T, cli, srv *secureParams, now time.Time) {
	t.Helper()
	var fin []byte
	for i := 0; ; i += 5 {
		ini := newSecureInitiator(cli)
		init, _ := ini.initiation(100, now)
		resp, rh, err := newSecureResponder(srv).handleInitiation(init, testSrc, 7, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, fin, err = ini.consumeResponse(resp, now); err != nil {
			t.Fatal(err)
		}
		if i >= len(fin)*8 {
			if _, err := rh.consumeFinish(srv, fin, now); err != nil {
				t.Fatalf("genuine finish refused: %v", err)
			}
			return
		}
		m := bytes.Clone(fin)
		m[i/8] ^= 1 << (i % 8)
		if _, err := rh.consumeFinish(srv, m, now); err == nil {
			t.Fatalf("finish bit %d flipped, accepted", i)
		}
		_, err = rh.consumeFinish(srv, fin, now)
		if header := i < (secPrefixLen+4)*8; header != (err == nil) {
			t.Fatalf("bit %d flipped, then the genuine finish: %v (header flips are dropped before Noise, others end the handshake)", i, err)
		}
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	accept := func(c uint64, want bool) {
		t.Helper()
		if got := w.mark(c); got != want {
			t.Fatalf("counter %d: accepted %v, want %v", c, got, want)
		}
	}
	accept(0, true)
	accept(0, false)
	accept(5, true)
	accept(3, true) // out of order, inside the window
	accept(3, false)
	accept(4, true)
	accept(5, false)
	accept(5000, true)
	accept(5000-2047, true) // the oldest counter inside the window
	accept(5000-2048, false)
	accept(5000-2047, false)
	accept(4999, true)
	accept(6, false) // far too old
	// A jump far beyond the ring clears it: old bits must not reappear as
	// "seen" for counters that map to the same words.
	accept(1_000_000, true)
	for c := uint64(1_000_000 - 2047); c < 1_000_000; c += 61 {
		accept(c, true)
		accept(c, false)
	}
	// Every counter in a long run with random reordering is accepted once.
	var v replayWindow
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	order := make([]uint64, n)
	for i := range order {
		order[i] = uint64(i)
	}
	for i := 0; i < n; i += 1000 { // shuffled blocks: displacement below the window
		blk := order[i:min(i+1000, n)]
		rng.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
	}
	for _, c := range order {
		if !v.mark(c) {
			t.Fatalf("counter %d refused on first sight", c)
		}
	}
	for _, c := range order[n-2000:] {
		if v.mark(c) {
			t.Fatalf("counter %d accepted twice", c)
		}
	}
	if v.check(secCounterLimit) || v.check(^uint64(0)) {
		t.Error("counter at the limit accepted")
	}
}

// TestSecureReplayAndReflection: replayed transport packets, packets older
// than the window and our own packets sent back are all refused.
func TestSecureReplayAndReflection(t *testing.T) {
	k := secureTestKeys()
	cli := mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false)
	srv := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv}, true)
	r, err := runHandshake(t, cli, srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_001, 0)
	var sent [][]byte
	for i := 0; i < 3000; i++ {
		pkt, _ := r.cli.seal(make([]byte, 0, 64), secData, []byte{byte(i)}, now)
		sent = append(sent, pkt)
	}
	open := func(pkt []byte) error {
		_, _, err := r.srv.open(bytes.Clone(pkt), now)
		return err
	}
	// Deliver out of order: the last one first, then the rest from 2999 down.
	for i := len(sent) - 1; i >= 0; i-- {
		err := open(sent[i])
		switch {
		case len(sent)-1-i < replayWindowSize && err != nil:
			t.Fatalf("packet %d within the window refused: %v", i, err)
		case len(sent)-1-i >= replayWindowSize && !errors.Is(err, ErrReplay):
			t.Fatalf("packet %d older than the window: %v, want ErrReplay", i, err)
		}
	}
	for i := len(sent) - 1; i >= 0; i -= 97 {
		if err := open(sent[i]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of packet %d: %v, want ErrReplay", i, err)
		}
	}
	// Reflection: the client's own packet handed back to the client.
	pkt, _ := r.cli.seal(make([]byte, 0, 64), secData, []byte("mine"), now)
	if _, _, err := r.cli.open(bytes.Clone(pkt), now); err == nil {
		t.Fatal("reflected packet accepted")
	}
	r.cli.localIndex = r.cli.remoteIndex // even with the index matching
	if _, _, err := r.cli.open(pkt, now); !errors.Is(err, ErrSecureAuth) {
		t.Fatalf("reflected packet with a matching index: %v, want ErrSecureAuth", err)
	}
}

// TestSecureCookie: under load a first initiation gets a cookie reply and no
// state; the cookie is bound to the source address; at the cap initiations
// are dropped.
func TestSecureCookie(t *testing.T) {
	k := secureTestKeys()
	cli := mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub}, false)
	srv := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv, CookieThreshold: 10, MaxPendingHandshakes: 20}, true)
	now := time.Unix(1_700_000_000, 0)
	resp := newSecureResponder(srv)
	ini := newSecureInitiator(cli)

	init, _ := ini.initiation(1, now)
	if _, rh, err := resp.handleInitiation(bytes.Clone(init), testSrc, 7, 9, now); rh == nil || err != nil {
		t.Fatalf("below the threshold: %v", err)
	}
	reply, rh, err := resp.handleInitiation(init, testSrc, 7, 10, now)
	if err != nil || rh != nil || len(reply) != secCookieReplyLen || reply[0] != secCookie {
		t.Fatalf("at the threshold: reply %d bytes, state %v, %v; want a cookie reply and no state", len(reply), rh, err)
	}
	if len(reply) > len(init) {
		t.Errorf("cookie reply %d bytes for a %d-byte initiation", len(reply), len(init))
	}
	// The stateless path costs no DH: it allocates a small, fixed amount.
	allocs := testing.AllocsPerRun(50, func() { resp.handleInitiation(init, testSrc, 7, 10, now) })
	full := testing.AllocsPerRun(5, func() { resp.handleInitiation(init, testSrc, 7, 0, now) })
	if allocs*2 > full {
		t.Errorf("cookie reply costs %.0f allocations, a full handshake %.0f: the cookie path does handshake work", allocs, full)
	}
	if err := ini.consumeCookieReply(reply, now); err != nil {
		t.Fatal(err)
	}
	init2, _ := ini.initiation(2, now)
	spoofed := netip.MustParseAddrPort("198.51.100.9:40000")
	if _, rh, _ := resp.handleInitiation(bytes.Clone(init2), spoofed, 7, 10, now); rh != nil {
		t.Fatal("cookie of one address accepted from another")
	}
	if _, rh, err := resp.handleInitiation(bytes.Clone(init2), testSrc, 7, 10, now); rh == nil || err != nil {
		t.Fatalf("initiation with a valid cookie under load refused: %v", err)
	}
	if _, rh, err := resp.handleInitiation(bytes.Clone(init2), testSrc, 7, 20, now); rh != nil || !errors.Is(err, errHandshakeBusy) {
		t.Fatalf("at MaxPendingHandshakes: %v, want errHandshakeBusy", err)
	}
	// The cookie stays valid across one rotation of the secret, not two.
	later := now.Add(cookieSecretLife + time.Second)
	init3, _ := ini.initiation(3, now)
	if _, rh, _ := resp.handleInitiation(bytes.Clone(init3), testSrc, 7, 10, later); rh == nil {
		t.Fatal("cookie refused after one rotation")
	}
	muchLater := later.Add(cookieSecretLife + time.Second)
	if _, rh, _ := resp.handleInitiation(init3, testSrc, 7, 10, muchLater); rh != nil {
		t.Fatal("cookie accepted after two rotations")
	}
	// The full exchange under load: one cookie round trip, then success.
	r, err := runHandshake(t, cli, srv, 10)
	if err != nil || r.cookieReplies != 1 || r.roundTrips != 2 {
		t.Fatalf("under load: %d cookie replies, %d round trips, %v", r.cookieReplies, r.roundTrips, err)
	}
}

// TestSecureRekey streams packets both ways with a tiny rekey limit, loss
// and reordering: every delivered packet opens exactly once and in the
// order given, across many epochs and the wrap of the epoch byte.
func TestSecureRekey(t *testing.T) {
	k := secureTestKeys()
	cli := mustParams(t, &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, RekeyAfterPackets: 16}, false)
	srv := mustParams(t, &SecureConfig{PrivateKey: k.srvPriv, RekeyAfterPackets: 16}, true)
	r, err := runHandshake(t, cli, srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_001, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dir := range [][2]*secureKeypair{{r.cli, r.srv}, {r.srv, r.cli}} {
		from, to := dir[0], dir[1]
		const n = 10_000
		var queue [][]byte
		delivered := make([]bool, n)
		for i := 0; i < n; i++ {
			var p [4]byte
			p[0], p[1] = byte(i), byte(i>>8)
			pkt, err := from.seal(make([]byte, 0, 40), secData, p[:], now)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 5000 && i < 5040 { // 40 lost in a row: 2.5 epochs unseen
				continue
			}
			queue = append(queue, pkt)
			if len(queue) >= 8 || i == n-1 { // deliver a shuffled batch
				rng.Shuffle(len(queue), func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })
				for _, q := range queue {
					_, plain, err := to.open(q, now)
					if err != nil {
						t.Fatalf("packet lost to rekeying: %v (epoch %d)", err, to.recvEpoch)
					}
					j := int(plain[0]) | int(plain[1])<<8
					if delivered[j] {
						t.Fatalf("packet %d delivered twice", j)
					}
					delivered[j] = true
				}
				queue = queue[:0]
			}
		}
		if from.sendEpoch < n/16-1 || to.recvEpoch != from.sendEpoch {
			t.Fatalf("epochs: sender %d, receiver %d; want %d, equal", from.sendEpoch, to.recvEpoch, n/16-1)
		}
	}
	// By time: a key older than RekeyAfterTime is replaced at the next seal.
	ep := r.cli.sendEpoch
	later := now.Add(defaultRekeyAfterTime)
	if _, err := sealOpen(t, r.cli, r.srv, secData, []byte("x"), later); err != nil || r.cli.sendEpoch != ep+1 {
		t.Fatalf("time rekey: epoch %d → %d, %v", ep, r.cli.sendEpoch, err)
	}
	// The previous epoch opens for secKeepOldEpoch after a switch, not after.
	r.cli.sendInEpoch = r.cli.rekeyPkts - 1
	old, _ := r.cli.seal(make([]byte, 0, 40), secData, []byte("old"), later)
	if _, err := sealOpen(t, r.cli, r.srv, secData, []byte("new"), later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.srv.open(bytes.Clone(old), later.Add(secKeepOldEpoch)); err == nil {
		t.Error("previous epoch still open after secKeepOldEpoch")
	}
	if _, _, err := r.srv.open(old, later.Add(secKeepOldEpoch-time.Millisecond)); err != nil {
		t.Errorf("previous epoch refused within secKeepOldEpoch: %v", err)
	}
	// Too far ahead: an epoch byte beyond secMaxEpochSkip is refused cheaply.
	r.cli.sendEpoch += secMaxEpochSkip + 1
	if _, err := sealOpen(t, r.cli, r.srv, secData, []byte("far"), later); !errors.Is(err, ErrSecureAuth) {
		t.Errorf("epoch %d ahead: %v, want ErrSecureAuth", secMaxEpochSkip+1, err)
	}
}

func TestSecurePath(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	b := netip.MustParseAddrPort("192.0.2.1:2000")
	c := netip.MustParseAddrPort("203.0.113.5:1000")
	now := time.Unix(1_700_000_000, 0)
	p := securePath{proven: a}
	if _, due := p.authenticated(a, 100, now); due {
		t.Fatal("challenge for the proven address")
	}
	ch, due := p.authenticated(b, 40, now)
	if !due || ch[0] != ctlPathChallenge {
		t.Fatalf("no challenge for a new address: %x", ch)
	}
	if _, due := p.authenticated(b, 40, now.Add(time.Millisecond)); due {
		t.Error("second challenge within pathChallengeRetry")
	}
	// 80 bytes received from b: 240 may go there, no more.
	if !p.allowSend(b, 200) || p.allowSend(b, 41) || !p.allowSend(b, 40) {
		t.Error("amplification budget is not 3× the bytes received")
	}
	if !p.allowSend(a, 1<<20) || p.allowSend(c, 1) {
		t.Error("proven address limited, or an unknown one allowed")
	}
	resp, _ := pathResponse(ch[:])
	if p.responded(c, resp[1:]) || p.responded(b, bytes.Repeat([]byte{0}, 8)) {
		t.Fatal("path moved on a response from elsewhere or with other bytes")
	}
	if p.proven != a {
		t.Fatal("proven address changed before validation")
	}
	if !p.responded(b, resp[1:]) || p.proven != b {
		t.Fatal("path did not move after a valid response")
	}
	if p.responded(b, resp[1:]) {
		t.Error("one response moved the path twice")
	}
	if _, ok := pathResponse([]byte{ctlPathResponse, 1, 2, 3, 4, 5, 6, 7, 8}); ok {
		t.Error("answered something that is not a challenge")
	}
	if _, ok := pathResponse(nil); ok {
		t.Error("answered something that is not a challenge")
	}
}

// TestSecureAllocs: sealing and opening a transport packet, and a client
// conn's WriteTo, allocate nothing.
func TestSecureAllocs(t *testing.T) {
	if raceEnabled {
		t.Log("allocation counts are not meaningful under the race detector; checking behaviour only")
	}
	k := secureTestKeys()
	for _, c := range []SecureCipher{SecureChaCha20Poly1305, SecureAES256GCM} {
		cfg := &SecureConfig{PrivateKey: k.cliPriv, PeerPublicKey: k.srvPub, Cipher: c}
		r, err := runHandshake(t, mustParams(t, cfg, false), mustParams(t, &SecureConfig{PrivateKey: k.srvPriv}, true), 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1400+SecureOverhead)
		now := time.Now()
		allocs := testing.AllocsPerRun(200, func() {
			pkt, err := r.cli.seal(buf[:0], secData, buf[secHeaderLen:secHeaderLen+1400], now)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := r.srv.open(pkt, now); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 && !raceEnabled {
			t.Errorf("%v: %.1f allocations per seal+open, want 0", c, allocs)
		}
	}
}
