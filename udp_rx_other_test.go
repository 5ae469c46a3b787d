//go:build !linux

package kcp

import "time"

// processCPU is not measured on this OS; benchmarks then omit cpu-ns.
func processCPU() time.Duration { return 0 }
