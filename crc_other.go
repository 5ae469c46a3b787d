//go:build !amd64 || purego

package kcp

import "hash/crc32"

// useCRCAVX512 is false: there is no assembly CRC here.
var useCRCAVX512 = false

// crcIEEE is crc32.ChecksumIEEE(p).
func crcIEEE(p []byte) uint32 { return crc32.ChecksumIEEE(p) }
