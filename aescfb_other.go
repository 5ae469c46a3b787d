//go:build !amd64 || purego

package kcp

// aesCFB has no assembly on this platform: AES-CFB runs on crypto/aes
// through cfbCrypt.
type aesCFB struct{ cfbCrypt }

// newAESCFB reports that there is no assembly AES-CFB here.
func newAESCFB(key []byte) *aesCFB { return nil }

// encryptBatch is never called: newAESCFB returns no aesCFB.
func (c *aesCFB) encryptBatch(pkts []outPacket) {
	for _, p := range pkts {
		c.Encrypt(p.b, p.b)
	}
}
