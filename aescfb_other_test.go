//go:build !amd64 || purego

package kcp

// aesWithoutVAES returns nil: there are no VAES kernels here.
func aesWithoutVAES(bc BlockCrypt) BlockCrypt { return nil }
