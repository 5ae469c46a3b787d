//go:build amd64 && !purego

package kcp

import "testing"

// TestAESCFBWithoutVAES holds the AES-NI kernels alone (eight chains, eight
// blocks) to crypto/cipher on a CPU that would otherwise use VAES for
// batches of more than eight datagrams and decryptions of 17 blocks or more.
func TestAESCFBWithoutVAES(t *testing.T) {
	if !useVAES {
		t.Skip("no VAES here: the other tests already run the AES-NI kernels alone")
	}
	useVAES = false
	defer func() { useVAES = true }()
	TestAESCFBMatchesCryptoCipher(t)
	TestAESCFBSealBatch(t)
}
