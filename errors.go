package kcp

import (
	"errors"
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

	// errDeadLink reports a peer that stopped acknowledging: a segment was
	// sent IKCP_DEADLINK times without an acknowledgement.
	errDeadLink = errors.New("kcp: peer stopped acknowledging (dead link)")

	// errIdle reports that nothing arrived from the peer for longer than the
	// idle timeout set with SetIdleTimeout.
	errIdle = errors.New("kcp: no packet from the peer within the idle timeout")

	// errInvalidOperation is returned by setters that do not apply, such as
	// a socket option on a session accepted from a Listener.
	errInvalidOperation = errors.New("kcp: invalid operation")

	// errNoFEC is returned by the OOB methods of a session without FEC.
	errNoFEC = errors.New("kcp: OOB needs FEC (dataShards and parityShards above zero)")

	// errOOBTooLarge is returned by SendOOB for a payload above GetOOBMaxSize.
	errOOBTooLarge = errors.New("kcp: OOB payload larger than GetOOBMaxSize")
)

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
