package interop

import (
	"fmt"

	kcpgo "github.com/xtaci/kcp-go/v5"
	"golang.org/x/crypto/chacha20poly1305"
)

// Cipher names one packet cipher and how kcptun keys it. Build it for kcp-go
// with KCPGo and for kcpx with KCPX; both take the same 32-byte pass.
type Cipher struct {
	// Name is kcptun's name for the cipher where kcptun has one ("null" is
	// the nil BlockCrypt: raw KCP without a crypto header).
	Name string
	// KeyLen is how many leading bytes of the pass the cipher gets, as
	// kcptun cuts it; 0 means the whole pass.
	KeyLen int
	// Block is the block size for the CFB ciphers, 0 for the others.
	Block int
	// AEAD is set for the ciphers built with NewAESGCMCrypt or NewAEADCrypt.
	AEAD bool
}

// Ciphers is every cipher both libraries offer: the 11 CFB ciphers, Salsa20,
// XOR, none, nil and three AEADs (AES-128/256-GCM and ChaCha20-Poly1305
// through NewAEADCrypt).
var Ciphers = []Cipher{
	{Name: "aes", Block: 16},
	{Name: "aes-128", KeyLen: 16, Block: 16},
	{Name: "aes-192", KeyLen: 24, Block: 16},
	{Name: "sm4", KeyLen: 16, Block: 16},
	{Name: "twofish", Block: 16},
	{Name: "3des", KeyLen: 24, Block: 8},
	{Name: "cast5", KeyLen: 16, Block: 8},
	{Name: "blowfish", Block: 8},
	{Name: "tea", KeyLen: 16, Block: 8},
	{Name: "xtea", KeyLen: 16, Block: 8},
	{Name: "salsa20"},
	{Name: "xor"},
	{Name: "none"},
	{Name: "null"},
	{Name: "aes-128-gcm", KeyLen: 16, AEAD: true},
	{Name: "aes-256-gcm", AEAD: true},
	{Name: "chacha20-poly1305", AEAD: true},
}

// CipherByName returns the entry of Ciphers called name.
func CipherByName(name string) (Cipher, bool) {
	for _, c := range Ciphers {
		if c.Name == name {
			return c, true
		}
	}
	return Cipher{}, false
}

// IsNil reports whether the cipher is the nil BlockCrypt (no crypto header).
func (c Cipher) IsNil() bool { return c.Name == "null" }

// HeaderSize is the bytes the cipher puts in front of each datagram: 0 for
// nil, the nonce size for an AEAD, 20 (nonce and CRC32) for the others.
func (c Cipher) HeaderSize() int {
	switch {
	case c.IsNil():
		return 0
	case c.AEAD:
		if c.Name == "chacha20-poly1305" {
			return chacha20poly1305.NonceSize
		}
		return 12
	default:
		return 20
	}
}

// Overhead is the AEAD tag size, 0 for the other ciphers.
func (c Cipher) Overhead() int {
	if c.AEAD {
		return 16
	}
	return 0
}

// Key returns the prefix of pass this cipher is keyed with.
func (c Cipher) Key(pass []byte) []byte {
	if c.KeyLen > 0 && c.KeyLen <= len(pass) {
		return pass[:c.KeyLen]
	}
	return pass
}

// KCPGo builds the cipher with kcp-go's constructors. "null" gives a nil
// BlockCrypt and no error.
func (c Cipher) KCPGo(pass []byte) (kcpgo.BlockCrypt, error) {
	key := c.Key(pass)
	switch c.Name {
	case "aes", "aes-128", "aes-192":
		return kcpgo.NewAESBlockCrypt(key)
	case "sm4":
		return kcpgo.NewSM4BlockCrypt(key)
	case "twofish":
		return kcpgo.NewTwofishBlockCrypt(key)
	case "3des":
		return kcpgo.NewTripleDESBlockCrypt(key)
	case "cast5":
		return kcpgo.NewCast5BlockCrypt(key)
	case "blowfish":
		return kcpgo.NewBlowfishBlockCrypt(key)
	case "tea":
		return kcpgo.NewTEABlockCrypt(key)
	case "xtea":
		return kcpgo.NewXTEABlockCrypt(key)
	case "salsa20":
		return kcpgo.NewSalsa20BlockCrypt(key)
	case "xor":
		return kcpgo.NewSimpleXORBlockCrypt(key)
	case "none":
		return kcpgo.NewNoneBlockCrypt(key)
	case "null":
		return nil, nil
	case "aes-128-gcm", "aes-256-gcm":
		return kcpgo.NewAESGCMCrypt(key)
	case "chacha20-poly1305":
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, err
		}
		return kcpgo.NewAEADCrypt(aead), nil
	}
	return nil, fmt.Errorf("interop: unknown cipher %q", c.Name)
}
