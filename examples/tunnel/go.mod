module github.com/kcpx/kcp/examples/tunnel

go 1.24.0

replace github.com/kcpx/kcp => ../..

require (
	github.com/kcpx/kcp v0.0.0-00010101000000-000000000000
	github.com/xtaci/smux v1.5.58
)

require (
	github.com/emmansun/gmsm v0.33.0 // indirect
	github.com/flynn/noise v1.1.0 // indirect
	github.com/juju/ratelimit v1.0.2 // indirect
	github.com/klauspost/cpuid/v2 v2.3.0 // indirect
	github.com/klauspost/reedsolomon v1.14.2 // indirect
	golang.org/x/crypto v0.48.0 // indirect
	golang.org/x/net v0.50.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
