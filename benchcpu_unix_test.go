//go:build unix

package kcp

import (
	"syscall"
	"time"
)

// benchCPU is the CPU time this process has used (user and system), for
// benchmarks that report CPU per byte: on a loaded host it varies far less
// than throughput does.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
