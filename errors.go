package kcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// closedError is returned by every operation on a closed session or
// listener. It matches both io.ErrClosedPipe (what kcp-go returned) and
// net.ErrClosed (what the standard library returns) with errors.Is.
type closedError struct{}

func (closedError) Error() string   { return "kcp: use of closed session or listener" }
func (closedError) Unwrap() []error { return []error{io.ErrClosedPipe, net.ErrClosed} }

var (
	// errClosed is the one value of closedError handed out.
	errClosed error = closedError{}

	// errTimeout is os.ErrDeadlineExceeded itself: a net.Error whose
	// Timeout method reports true, exactly what net.Conn implementations of
	// the standard library return.
	errTimeout error = os.ErrDeadlineExceeded

	// errDeadLink and errIdle are the names the session code uses for
	// ErrDeadLink and ErrIdleTimeout.
	errDeadLink = ErrDeadLink
	errIdle     = ErrIdleTimeout

	// errInvalidOperation is returned by setters that do not apply, such as
	// a socket option on a session accepted from a Listener.
	errInvalidOperation = errors.New("kcp: invalid operation")

	// errNoRemotePort is returned by DialWithOptions for an address without
	// a port (the empty string among them).
	errNoRemotePort = errors.New("kcp: missing remote address or port (want host:port)")

	// errNoFEC is returned by the OOB methods of a session without FEC.
	errNoFEC = errors.New("kcp: OOB needs FEC (dataShards and parityShards above zero)")

	// errOOBTooLarge is returned by SendOOB for a payload above GetOOBMaxSize.
	errOOBTooLarge = errors.New("kcp: OOB payload larger than GetOOBMaxSize")
)

// ErrDeadLink is returned by Read and Write of a session whose peer stopped
// acknowledging: a segment was sent IKCP_DEADLINK (20) times without an
// acknowledgement. The session is unusable from then on; close it. Test for
// it with errors.Is.
var ErrDeadLink = errors.New("kcp: peer stopped acknowledging (dead link)")

// ErrIdleTimeout is returned by Read and Write of a session that heard
// nothing from its peer for longer than the idle timeout set with
// SetIdleTimeout. It is a net.Error whose Timeout method reports true (as
// quic-go's IdleTimeoutError), but unlike a passed deadline the session is
// unusable from then on: a loop that retries on Timeout() should test
// errors.Is(err, ErrIdleTimeout) first. It does not match
// os.ErrDeadlineExceeded.
var ErrIdleTimeout net.Error = idleTimeoutError{}

type idleTimeoutError struct{}

func (idleTimeoutError) Error() string   { return "kcp: no packet from the peer within the idle timeout" }
func (idleTimeoutError) Timeout() bool   { return true }
func (idleTimeoutError) Temporary() bool { return false }

// KeySizeError is returned by a cipher constructor (NewAESBlockCrypt and the
// others) given a key of a length its cipher does not take. Cipher names the
// cipher, Len is the length given and Valid the lengths accepted, in words
// ("16, 24 or 32"). Err is the error of the underlying cipher package.
type KeySizeError struct {
	Cipher string
	Len    int
	Valid  string
	Err    error
}

// Error names kcp, the cipher, the length given and the lengths accepted.
func (e *KeySizeError) Error() string {
	return fmt.Sprintf("kcp: %s key of %d bytes: the key must be %s bytes", e.Cipher, e.Len, e.Valid)
}

// Unwrap returns the underlying cipher package's error.
func (e *KeySizeError) Unwrap() error { return e.Err }

// opError wraps a socket error the way package net does, unless it is one
// already.
func opError(op string, conn net.PacketConn, remote net.Addr, err error) error {
	if err == nil {
		return nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "udp", Source: conn.LocalAddr(), Addr: remote, Err: err}
}
