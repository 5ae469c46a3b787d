// Package interop proves that kcpx (github.com/kcpx/kcp) is kcp-go
// (github.com/xtaci/kcp-go/v5 v5.6.72 with go.mod, v5.7.6 with
// -modfile=go57.mod) on the wire and in its API, and measures the two side by
// side.
//
// It is a separate module so that the main module never depends on kcp-go.
// The package holds what the tests and the measurement driver (./bench)
// share: kcptun's key derivation and presets, the table of every cipher built
// for both libraries from the same key, an in-memory lossy packet link that
// either library's KCP core can drive, a tapping net.PacketConn, and one
// session interface with an adapter per library, so that every test and
// measure runs the same code against both implementations.
//
// The tests run with `go test ./...` from this directory; the side-by-side
// table comes from `go run ./bench` (see README.md).
package interop
