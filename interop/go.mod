module github.com/kcpx/kcp/interop

go 1.26.0

replace github.com/kcpx/kcp => ../

require (
	github.com/juju/ratelimit v1.0.2
	github.com/kcpx/kcp v0.0.0-00010101000000-000000000000
	github.com/quic-go/quic-go v0.65.0
	github.com/xtaci/kcp-go/v5 v5.6.72
	golang.org/x/crypto v0.54.0
)

require (
	github.com/emmansun/gmsm v0.33.0 // indirect
	github.com/flynn/noise v1.1.0 // indirect
	github.com/klauspost/cpuid/v2 v2.3.0 // indirect
	github.com/klauspost/reedsolomon v1.14.2 // indirect
	github.com/kr/pretty v0.3.1 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/tjfoc/gmsm v1.4.1 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/time v0.14.0 // indirect
)
