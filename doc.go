// Package kcp is a reliable, ordered transport over UDP that speaks the KCP
// protocol byte for byte like github.com/xtaci/kcp-go/v5 and, without a cipher
// or FEC, like the C implementation ikcp.c.
//
// It is a drop-in replacement for kcp-go v5: the package name, the exported
// identifiers and their types are the same, so switching is a change of the
// import path.
//
// # The ARQ core
//
// KCP is the protocol state machine: segmentation, acknowledgement,
// retransmission, windows and congestion control. It performs no I/O, starts
// no goroutines and reads the time only through a clock function it is given,
// so it can be driven by a simulated link in tests or embedded anywhere.
//
// # Congestion control
//
// By default a session keeps kcp-go's behaviour: KCP's own congestion window
// (SetNoDelay nc=0), or none at all with nc=1. SetCongestionControl("bbr")
// switches to a BBR controller that paces at the measured bottleneck
// bandwidth and keeps the bottleneck queue short without backing off on
// random loss; "cubic" selects CUBIC. Only the sender changes, so the peer
// may run any KCP implementation. With any controller, Write blocks once
// more than SetWriteQueueLimit bytes wait beyond the congestion window.
//
// # Sessions
//
// UDPSession is a net.Conn over a net.PacketConn and Listener is a
// net.Listener that demultiplexes one socket by source address. Timeouts are
// net.Error values whose Timeout method reports true, and the errors of a
// closed session match both io.ErrClosedPipe and net.ErrClosed. A session
// whose peer stopped acknowledging fails with ErrDeadLink, one that heard
// nothing for its idle timeout with ErrIdleTimeout; test them with errors.Is.
// Close waits, bounded by SetLinger (5 s by default), until the peer has
// acknowledged what was written, so a program may write, close and exit.
//
// # Forward error correction
//
// With dataShards and parityShards above zero, every group of dataShards
// datagrams is followed by parityShards Reed-Solomon parity datagrams, so a
// receiver can rebuild lost datagrams without waiting for a retransmission.
//
// # Encryption
//
// Every datagram can be sealed with a BlockCrypt: the CFB block ciphers,
// Salsa20, XOR and none of kcp-go, or an AEAD (NewAESGCMCrypt,
// NewAEADCrypt). A datagram that fails to open is counted and dropped.
//
// # Batch I/O
//
// On Linux, datagrams are read and written in batches with recvmmsg and
// sendmmsg. Where the kernel or a sandbox refuses those calls, the session
// falls back once to one datagram per call and counts the fallback.
//
// # Observability
//
// UDPSession.Stats returns a snapshot of a session (RTT, congestion
// window, bytes in flight, retransmissions, queues) cheap enough to poll
// often. A Tracer set with SetTracer hears every datagram, loss, metric
// update and state change; QlogTracer writes them as qlog for qvis, and the
// KCPX_QLOGDIR environment variable traces every session to a directory.
// PublishSnmp, SessionVar and ListenerVar publish through expvar.
package kcp
