package interop

import (
	"io"
	"os"
	"sync/atomic"
	"testing"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// switchReader is a nonce source whose underlying reader can be swapped at
// any time without a data race. Each library gets one before any session
// exists (kcp-go's SetEntropy writes a plain global that its sessions read),
// so that tests can later make nonces deterministic and restore them.
type switchReader struct{ r atomic.Pointer[io.Reader] }

func (s *switchReader) use(r io.Reader) { s.r.Store(&r) }

func (s *switchReader) Read(p []byte) (int, error) { return (*s.r.Load()).Read(p) }

var kcpgoNonces, kcpxNonces switchReader

func TestMain(m *testing.M) {
	kcpgoNonces.use(kcpgo.NewEntropy())
	kcpgo.SetEntropy(&kcpgoNonces)
	installKCPXNonces()
	SerializeKCPGoSM4 = raceEnabled
	os.Exit(m.Run())
}

// firstDiff is the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// restoreNonces gives both libraries their default nonce sources back.
func restoreNonces() {
	kcpgoNonces.use(kcpgo.NewEntropy())
	restoreKCPXNonces()
}
