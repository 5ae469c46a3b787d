package interop

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/pbkdf2"
)

// TestKcptunPass checks the derivation against the call kcptun makes
// (x/crypto's pbkdf2 with SHA-1, salt "kcp-go", 4096 rounds, 32 bytes) and
// against a fixed answer for kcptun's default key.
func TestKcptunPass(t *testing.T) {
	for _, key := range []string{"it's a secrect", "", "kcpx interop bench", "\x00\xff long passphrase with spaces and ünïcödé"} {
		got := KcptunPass(key)
		want := pbkdf2.Key([]byte(key), []byte("kcp-go"), 4096, 32, sha1.New)
		if !bytes.Equal(got, want) {
			t.Fatalf("KcptunPass(%q) = %x, kcptun derives %x", key, got, want)
		}
	}
	const fixed = "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444"
	if got := hex.EncodeToString(KcptunPass("it's a secrect")); got != fixed {
		t.Fatalf("KcptunPass(default key) = %s, want %s", got, fixed)
	}
}

// TestCipherKeyCuts checks each cipher gets the key length kcptun gives it
// and that kcp-go accepts every cipher built from the derived pass.
func TestCipherKeyCuts(t *testing.T) {
	want := map[string]int{
		"aes": 32, "aes-128": 16, "aes-192": 24, "sm4": 16, "twofish": 32, "3des": 24,
		"cast5": 16, "blowfish": 32, "tea": 16, "xtea": 16, "salsa20": 32, "xor": 32,
		"none": 32, "null": 32, "aes-128-gcm": 16, "aes-256-gcm": 32, "chacha20-poly1305": 32,
	}
	if len(Ciphers) != len(want) {
		t.Fatalf("%d ciphers in the table, want %d", len(Ciphers), len(want))
	}
	pass := KcptunPass("it's a secrect")
	for _, c := range Ciphers {
		t.Run(c.Name, func(t *testing.T) {
			n, ok := want[c.Name]
			if !ok {
				t.Fatalf("unexpected cipher %q", c.Name)
			}
			key := c.Key(pass)
			if len(key) != n || !bytes.Equal(key, pass[:n]) {
				t.Fatalf("key is %d bytes, want the first %d of the pass", len(key), n)
			}
			block, err := c.KCPGo(pass)
			if err != nil {
				t.Fatalf("kcp-go refuses the key: %v", err)
			}
			if (block == nil) != c.IsNil() {
				t.Fatalf("kcp-go BlockCrypt nil = %v", block == nil)
			}
		})
	}
}
