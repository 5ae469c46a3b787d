//go:build amd64 && !purego

package kcp

// aesWithoutVAES returns a copy of the assembly AES-CFB cipher bc that keeps
// to the AES-NI kernels, or nil when bc is not one or would not use VAES
// anyway (so there is nothing different to test or measure).
func aesWithoutVAES(bc BlockCrypt) BlockCrypt {
	c, ok := bc.(*aesCFB)
	if !ok || !c.vaes {
		return nil
	}
	d := *c
	d.vaes = false
	return &d
}
