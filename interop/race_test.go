//go:build race

package interop

// raceEnabled shrinks the transfers when the race detector slows every
// memory access down.
const raceEnabled = true
