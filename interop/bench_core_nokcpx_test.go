//go:build !interop_core

package interop

import "testing"

// Until kcpx's core is merged these run kcp-go alone.
func benchFlushKCPX(*testing.B) {}
func benchInputKCPX(*testing.B) {}
