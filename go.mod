module github.com/kcpx/kcp

go 1.24.0

require (
	github.com/emmansun/gmsm v0.33.0
	github.com/flynn/noise v1.1.0
	github.com/juju/ratelimit v1.0.2
	github.com/klauspost/reedsolomon v1.14.2
	golang.org/x/crypto v0.48.0
	golang.org/x/net v0.50.0
	golang.org/x/sys v0.41.0
)

require github.com/klauspost/cpuid/v2 v2.3.0 // indirect
