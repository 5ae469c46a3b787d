module github.com/kcpx/kcp

go 1.24.0

require (
	github.com/emmansun/gmsm v0.33.0
	github.com/klauspost/reedsolomon v1.14.2
	golang.org/x/crypto v0.45.0
	golang.org/x/sys v0.38.0
)

require github.com/klauspost/cpuid/v2 v2.3.0 // indirect
