//go:build !interop_crypt

package interop

func installKCPXNonces() {}

func restoreKCPXNonces() {}
