//go:build !unix

package kcp

import "time"

// benchCPU is not measured here; benchmarks report 0 CPU.
func benchCPU() time.Duration { return 0 }
