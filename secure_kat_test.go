package kcp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// TestSecureKnownAnswers pins the wire: transport packets recomputed here
// from docs/SECURE.md §3–4 with plain HKDF and AEAD calls, and fixed hex for
// them and for whole handshakes between the deterministic fuzz endpoints.
func TestSecureKnownAnswers(t *testing.T) {
	// The fuzz keypairs: Split keys {1,0..} (i2r) and {2,0..} (r2i), h = 32×7.
	var k1 [32]byte
	k1[0] = 1
	h := bytes.Repeat([]byte{7}, 32)
	expand := func(secret []byte, info string) []byte {
		out := make([]byte, 32)
		hkdf.Expand(sha256.New, secret, []byte(info)).Read(out)
		return out
	}
	s0 := make([]byte, 32)
	hkdf.New(sha256.New, k1[:], h, []byte("kcpx v1 i2r")).Read(s0)
	key0 := expand(s0, "kcpx v1 key")
	key1 := expand(expand(s0, "kcpx v1 next"), "kcpx v1 key")

	want := map[SecureCipher][2]string{
		SecureChaCha20Poly1305: {
			"05000000f20044332211000000000000000079f58270d54adeb91257fbe12132f77511af33ab",
			"05010000f200443322111000000000000000ce7fb02185641cd6860a90fc21f3cf10586ac7f0",
		},
		SecureAES256GCM: {
			"05000000f200443322110000000000000000c6d2eb4047c55543ce90095916fc3076f1b82743",
			"05010000f2004433221110000000000000003deeb9221fc35e6e8ac685fe90da32b6ddf10451",
		},
	}
	_, send := fuzzKeypairs(t)
	for i, c := range []SecureCipher{SecureChaCha20Poly1305, SecureAES256GCM} {
		aeadFor := func(key []byte) cipher.AEAD {
			if c == SecureAES256GCM {
				b, _ := aes.NewCipher(key)
				a, _ := cipher.NewGCM(b)
				return a
			}
			a, _ := chacha20poly1305.New(key)
			return a
		}
		// By hand: packet 0 under K(0), packet 16 under K(1) (epoch byte 1).
		byHand := func(epoch byte, counter uint64, key []byte) []byte {
			hdr := []byte{secData, epoch, 0, 0, 0xF2, 0, 0x44, 0x33, 0x22, 0x11}
			hdr = binary.LittleEndian.AppendUint64(hdr, counter)
			nonce := binary.LittleEndian.AppendUint64(make([]byte, 4), counter)
			return aeadFor(key).Seal(hdr, nonce, []byte("kcpx"), hdr)
		}
		var pkts [][]byte
		for j := 0; j < 17; j++ {
			pkt, err := send[i].seal(make([]byte, 0, 64), secData, []byte("kcpx"), fuzzNow)
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, pkt)
		}
		for j, tc := range []struct {
			got, hand []byte
		}{{pkts[0], byHand(0, 0, key0)}, {pkts[16], byHand(1, 16, key1)}} {
			if !bytes.Equal(tc.got, tc.hand) {
				t.Errorf("%v packet %d: sealed %x, the spec gives %x", c, j*16, tc.got, tc.hand)
			}
			if hex.EncodeToString(tc.got) != want[c][j] {
				t.Errorf("%v packet %d: %x, pinned %s", c, j*16, tc.got, want[c][j])
			}
		}
	}

	// Whole handshakes (initiation, response, finish) between the
	// deterministic endpoints.
	pinned := map[byte]string{
		patternIK: "21fc37afaaa5e91d46f64a7dabdc887ccc03c6fb97900b772a59fb3b8ec75270",
		patternXX: "933c2477b08382a5622760590b4f35ee7a90453c24b9ec2fa9b063790de0d80f",
		patternNN: "5ec0a854ccd0f006820fd7076a9024fdf68f67a6b9a709f31ebd5ccd46f02e4d",
	}
	for _, pat := range fuzzPatterns {
		ini, init := fuzzInitiation(t, pat)
		resp, _, _ := fuzzResponse(t, pat)
		_, fin, err := ini.consumeResponse(resp, fuzzNow)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		sum.Write(init)
		sum.Write(resp)
		sum.Write(fin)
		if got := hex.EncodeToString(sum.Sum(nil)); got != pinned[pat] {
			t.Errorf("pattern %d: handshake bytes hash %s, pinned %s", pat, got, pinned[pat])
		}
	}
}
