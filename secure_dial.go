package kcp

// Secure mode over sockets, the client side (secure_listen.go has the
// listener). Both sides are net.PacketConn wrappers that run the handshake
// and seal and open every datagram, under ordinary sessions with a nil
// BlockCrypt. They are datagram filters (udp_filter.go): the engine reads
// and writes their socket with its batch I/O (recvmmsg, sendmmsg, GRO,
// GSO) and has each datagram opened or sealed by them, in place or into
// the writer's own buffers, with no allocation.
//
// Client: DialSecure ──▶ handshake on the new socket (retries, cookie) ──▶
// secureClientConn ──▶ NewConn4. The conn is a datagramFilter
// (udp_filter.go): the session's reader reads the socket in batches and
// calls filterIn, which opens datagrams from the server, answers path
// challenges (into the conn's ctlQueue: the reader never writes), and
// returns KCP datagrams; the session's sender calls filterOut, which seals,
// writes the batch, and writes the queued control replies. One goroutine
// per conn queues the key confirmation again until the server answers.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// secRetryFirst and secRetryMax bound the handshake retry interval,
	// which doubles from the first to the second.
	secRetryFirst = 250 * time.Millisecond
	secRetryMax   = 2 * time.Second
	// secBufLen is the size of the pooled seal buffers and of read buffers:
	// the largest datagram plus the overhead, with room to spare.
	secBufLen = mtuLimit + SecureOverhead + 64
)

// secBufPool holds seal buffers (*[]byte of secBufLen), so WriteTo allocates
// nothing per datagram.
var secBufPool = sync.Pool{New: func() any { b := make([]byte, secBufLen); return &b }}

// errSecureTooLarge: a datagram that does not fit a secure packet.
var errSecureTooLarge = errors.New("kcp: secure: datagram too large")

// randomIndex draws a non-zero session index.
func randomIndex() uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		if i := binary.LittleEndian.Uint32(b[:]); i != 0 {
			return i
		}
	}
}

// DialSecure connects to raddr ("host:port", network "udp") in secure mode
// (docs/SECURE.md), without FEC. See DialSecureWithOptions.
func DialSecure(raddr string, cfg *SecureConfig) (*UDPSession, error) {
	return DialSecureWithOptions(raddr, cfg, 0, 0)
}

// DialSecureWithOptions connects to raddr ("host:port", network "udp") in
// secure mode from a new socket the session owns, with FEC when
// dataShards and parityShards are above zero. It returns once the handshake
// has completed (one round trip; two when the listener asks for a cookie),
// or fails with a *SecureConfigError, a *PeerKeyError (server key not
// trusted), ErrCipherRefused, or ErrHandshakeTimeout after
// cfg.HandshakeTimeout. The session then works as any other (every setting,
// FEC, deadlines); its datagrams are 34 bytes larger (SecureOverhead), so
// keep SetMtu at or below 1438 to stay within 1472-byte UDP payloads.
func DialSecureWithOptions(raddr string, cfg *SecureConfig, dataShards, parityShards int) (*UDPSession, error) {
	p, err := newSecureParams(cfg, false)
	if err != nil {
		return nil, err
	}
	udpaddr, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		return nil, err
	}
	network := "udp"
	if udpaddr.IP.To4() != nil {
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, err
	}
	tuneOwnSocket(conn)
	sc, err := dialSecureConn(conn, udpaddr, p)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return NewConn4(randomConv(), sc.serverAddr, nil, dataShards, parityShards, true, sc)
}

// secureClientConn is the client's secure PacketConn. ReadFrom is called by
// one goroutine at a time; WriteTo and Close are safe for concurrent use.
type secureClientConn struct {
	p          *secureParams
	server     netip.AddrPort
	serverAddr *net.UDPAddr
	kp         *secureKeypair
	confirm    []byte // what is repeated until the server answers: finish or nil (keepalive)
	sock       atomic.Pointer[net.UDPConn]
	rbuf       []byte // ReadFrom's
	ctl        *ctlQueue
	plain      [ctlPathLen]byte // the reader's path response on its way to seal

	confirmed atomic.Bool
	confirmCh chan struct{} // closed when confirmed
	failed    atomic.Pointer[error]
	die       chan struct{}
	closeOnce sync.Once
	bad       atomic.Uint64 // datagrams dropped: not from the server, or not opening
}

// dialSecureConn runs the client handshake on sock and returns the conn.
func dialSecureConn(sock *net.UDPConn, raddr *net.UDPAddr, p *secureParams) (*secureClientConn, error) {
	server := unmapAddrPort(raddr.AddrPort())
	ini := newSecureInitiator(p)
	deadline := time.Now().Add(p.hsTimeout)
	buf := make([]byte, secBufLen)
	retry := secRetryFirst
	var kp *secureKeypair
	var finish []byte
attempts:
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return nil, ErrHandshakeTimeout
		}
		init, err := ini.initiation(randomIndex(), now)
		if err != nil {
			return nil, err
		}
		if _, err := sock.WriteToUDPAddrPort(init, server); err != nil && !transientReadError(err) {
			return nil, opError("dial", sock, raddr, err)
		}
		wait := now.Add(retry)
		if wait.After(deadline) {
			wait = deadline
		}
		retry = min(2*retry, secRetryMax)
		for {
			sock.SetReadDeadline(wait)
			n, from, err := sock.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue attempts
				}
				if transientReadError(err) {
					continue
				}
				return nil, opError("dial", sock, raddr, err)
			}
			if unmapAddrPort(from) != server || n == 0 {
				continue
			}
			switch buf[0] {
			case secCookie:
				if ini.consumeCookieReply(buf[:n], time.Now()) == nil {
					continue attempts // a new initiation with the cookie, at once
				}
			case secResponse:
				kp, finish, err = ini.consumeResponse(buf[:n], time.Now())
				switch {
				case err == nil:
					break attempts
				case errors.Is(err, ErrSecureMalformed), errors.Is(err, ErrSecureAuth):
					// Not our response (or forged): keep waiting.
				default:
					return nil, err
				}
			}
		}
	}
	sock.SetReadDeadline(time.Time{})
	c := &secureClientConn{
		p:          p,
		server:     server,
		serverAddr: net.UDPAddrFromAddrPort(server),
		kp:         kp,
		confirm:    finish,
		rbuf:       make([]byte, secBufLen),
		ctl:        newCtlQueue(ctlSlotsClient),
		confirmCh:  make(chan struct{}),
		die:        make(chan struct{}),
	}
	c.sock.Store(sock)
	c.sendConfirm()
	go c.confirmLoop(deadline.Add(p.hsTimeout))
	return c, nil
}

// sendConfirm queues the finish (XX) or an empty data packet for the
// session's sender.
func (c *secureClientConn) sendConfirm() {
	if c.confirm != nil {
		c.ctl.put(c.confirm, c.server)
		return
	}
	c.queue(secData, nil, time.Now())
}

// queue seals payload as a packet of type typ for the server into a slot
// of the control queue, which the session's sender writes. A full queue
// drops it (counted there).
func (c *secureClientConn) queue(typ byte, payload []byte, now time.Time) {
	buf := c.ctl.begin()
	if buf == nil {
		return
	}
	pkt, err := c.kp.seal(buf, typ, payload, now)
	if err != nil {
		c.ctl.abort()
		return
	}
	c.ctl.commit(len(pkt), c.server)
}

// confirmLoop repeats the key confirmation until the server answers, the
// conn closes, or until; then the conn fails with ErrHandshakeTimeout.
func (c *secureClientConn) confirmLoop(until time.Time) {
	retry := secRetryFirst
	t := time.NewTimer(retry)
	defer t.Stop()
	for {
		select {
		case <-c.die:
			return
		case <-c.confirmCh:
			return
		case <-t.C:
		}
		if time.Now().After(until) {
			c.fail(ErrHandshakeTimeout)
			return
		}
		c.sendConfirm()
		retry = min(2*retry, secRetryMax)
		t.Reset(retry)
	}
}

// fail ends the conn with err: ReadFrom returns it from now on.
func (c *secureClientConn) fail(err error) {
	c.failed.CompareAndSwap(nil, &err)
	c.sock.Load().SetReadDeadline(time.Unix(1, 0))
}

// send seals payload as a packet of type typ and writes it to the server
// at once: for WriteTo and Close, which the session's sender calls (or a
// caller using the conn alone), never the reader.
func (c *secureClientConn) send(typ byte, payload []byte) error {
	if len(payload)+SecureOverhead > secBufLen {
		return errSecureTooLarge
	}
	bp := secBufPool.Get().(*[]byte)
	defer secBufPool.Put(bp)
	pkt, err := c.kp.seal((*bp)[:0], typ, payload, time.Now())
	if err != nil {
		return err
	}
	_, err = c.sock.Load().WriteToUDPAddrPort(pkt, c.server)
	return err
}

// ReadFrom returns the next KCP datagram from the server, after opening it.
// Sessions do not call it: the engine reads the socket itself and calls
// filterIn (udp_filter.go); this is the same decoder around one plain read.
func (c *secureClientConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		sock := c.sock.Load()
		n, from, err := sock.ReadFromUDPAddrPort(c.rbuf)
		if err != nil {
			if c.sock.Load() != sock { // rebound meanwhile
				continue
			}
			return 0, nil, c.filterErr(err)
		}
		data, _, ok := c.filterIn(c.rbuf[:n], unmapAddrPort(from), time.Now())
		c.ctl.flushPlain(sock)
		if ok {
			return copy(b, data), c.serverAddr, nil
		}
		if e := c.failed.Load(); e != nil {
			return 0, nil, *e
		}
	}
}

// filterCtl returns the conn's control replies (datagramFilter).
func (c *secureClientConn) filterCtl() *ctlQueue { return c.ctl }

// filterSocket returns the socket in use (datagramFilter).
func (c *secureClientConn) filterSocket() *net.UDPConn { return c.sock.Load() }

// filterErr returns the conn's failure (ErrPeerClosed, ErrHandshakeTimeout)
// when it has one, else err (datagramFilter).
func (c *secureClientConn) filterErr(err error) error {
	if e := c.failed.Load(); e != nil {
		return *e
	}
	return err
}

// filterIn opens a datagram from src (datagramFilter): a KCP datagram from
// the server is returned in place; keepalives, path challenges (answered
// here) and the server's close (which fails the conn) are consumed, and
// anything not from the server or not opening is counted and dropped.
func (c *secureClientConn) filterIn(pkt []byte, src netip.AddrPort, now time.Time) ([]byte, netip.AddrPort, bool) {
	if src != c.server {
		c.bad.Add(1)
		return nil, netip.AddrPort{}, false
	}
	typ, plain, err := c.kp.open(pkt, now)
	if err != nil {
		c.bad.Add(1)
		return nil, netip.AddrPort{}, false
	}
	if !c.confirmed.Load() && c.confirmed.CompareAndSwap(false, true) {
		close(c.confirmCh)
	}
	if typ == secData {
		if len(plain) == 0 {
			return nil, netip.AddrPort{}, false // keepalive
		}
		return plain, c.server, true
	}
	switch {
	case len(plain) == 0:
	case plain[0] == ctlPathChallenge:
		if resp, ok := pathResponse(plain); ok {
			c.plain = resp
			c.queue(secControl, c.plain[:], now)
		}
	case plain[0] == ctlClose:
		c.fail(ErrPeerClosed)
	}
	return nil, netip.AddrPort{}, false
}

// filterOut seals p for the server, whatever to says (datagramFilter).
func (c *secureClientConn) filterOut(buf, p []byte, _ netip.AddrPort, now time.Time) ([]byte, netip.AddrPort, bool, error) {
	pkt, err := c.kp.seal(buf[:0], secData, p, now)
	if err != nil {
		return nil, netip.AddrPort{}, false, err
	}
	return pkt, c.server, true, nil
}

// WriteTo seals p and sends it to the server, whatever addr says.
func (c *secureClientConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if err := c.send(secData, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends an authenticated close (twice, against loss) and closes the
// socket.
func (c *secureClientConn) Close() error {
	err := errClosed
	c.closeOnce.Do(func() {
		close(c.die)
		var body [3]byte
		body[0] = ctlClose
		c.send(secControl, body[:])
		c.send(secControl, body[:])
		err = c.sock.Load().Close()
	})
	return err
}

// rebind moves the client to a new local port, as a NAT rebinding would.
// For tests.
func (c *secureClientConn) rebind() error {
	old := c.sock.Load()
	nc, err := net.ListenUDP(old.LocalAddr().Network(), nil)
	if err != nil {
		return err
	}
	c.sock.Store(nc)
	return old.Close()
}

// LocalAddr returns the socket's address.
func (c *secureClientConn) LocalAddr() net.Addr { return c.sock.Load().LocalAddr() }

// SetDeadline sets the socket's deadlines.
func (c *secureClientConn) SetDeadline(t time.Time) error { return c.sock.Load().SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline.
func (c *secureClientConn) SetReadDeadline(t time.Time) error {
	return c.sock.Load().SetReadDeadline(t)
}

// SetWriteDeadline sets the socket's write deadline.
func (c *secureClientConn) SetWriteDeadline(t time.Time) error {
	return c.sock.Load().SetWriteDeadline(t)
}

// SetReadBuffer sets the socket's receive buffer in bytes.
func (c *secureClientConn) SetReadBuffer(n int) error { return c.sock.Load().SetReadBuffer(n) }

// SetWriteBuffer sets the socket's send buffer in bytes.
func (c *secureClientConn) SetWriteBuffer(n int) error { return c.sock.Load().SetWriteBuffer(n) }

// SetDSCP sets the socket's DSCP (0..63) for IPv4 and IPv6.
func (c *secureClientConn) SetDSCP(dscp int) error { return setDSCP(c.sock.Load(), dscp) }
