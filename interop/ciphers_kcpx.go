package interop

import (
	"fmt"

	kcpx "github.com/kcpx/kcp"
	"golang.org/x/crypto/chacha20poly1305"
)

// KCPX builds the cipher with kcpx's constructors, which carry kcp-go's names.
// "null" gives a nil BlockCrypt and no error.
func (c Cipher) KCPX(pass []byte) (kcpx.BlockCrypt, error) {
	key := c.Key(pass)
	switch c.Name {
	case "aes", "aes-128", "aes-192":
		return kcpx.NewAESBlockCrypt(key)
	case "sm4":
		return kcpx.NewSM4BlockCrypt(key)
	case "twofish":
		return kcpx.NewTwofishBlockCrypt(key)
	case "3des":
		return kcpx.NewTripleDESBlockCrypt(key)
	case "cast5":
		return kcpx.NewCast5BlockCrypt(key)
	case "blowfish":
		return kcpx.NewBlowfishBlockCrypt(key)
	case "tea":
		return kcpx.NewTEABlockCrypt(key)
	case "xtea":
		return kcpx.NewXTEABlockCrypt(key)
	case "salsa20":
		return kcpx.NewSalsa20BlockCrypt(key)
	case "xor":
		return kcpx.NewSimpleXORBlockCrypt(key)
	case "none":
		return kcpx.NewNoneBlockCrypt(key)
	case "null":
		return nil, nil
	case "aes-128-gcm", "aes-256-gcm":
		return kcpx.NewAESGCMCrypt(key)
	case "chacha20-poly1305":
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, err
		}
		return kcpx.NewAEADCrypt(aead), nil
	}
	return nil, fmt.Errorf("interop: unknown cipher %q", c.Name)
}
