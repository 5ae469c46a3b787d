package kcp

import (
	"net"
	"net/netip"
	"time"
)

// Conns that push (PacketPusher, kcp-go v5.7): a conn that hands each
// datagram to a callback is never read, so a session or listener on it has
// no read goroutine. The conn's own goroutine runs the callback, and with it
// what the reader would do: open, demultiplex, input. It must not send from
// there either: like the reader, the callback only queues output for the
// socket's sendQueue. When the session or listener is done with the conn it
// sets the receiver to nil.

// letGoConn stops using conn once its sender has written what was queued:
// a pushing conn loses its receiver, a conn the library opened is closed,
// and a caller's conn gets a read deadline in the past to wake the read
// loop (which clears it on its way out). It returns the error of that step.
func letGoConn(conn net.PacketConn, own bool, pusher PacketPusher) error {
	if pusher != nil {
		pusher.SetPacketReceiver(nil)
	}
	switch {
	case own:
		return conn.Close()
	case pusher == nil:
		return conn.SetReadDeadline(time.Unix(1, 0))
	}
	return nil
}

// pushSource turns a pushed datagram's source into the forms the handlers
// take: an unmapped AddrPort for UDP addresses, else the address itself.
func pushSource(addr net.Addr) (netip.AddrPort, net.Addr) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		if ap := ua.AddrPort(); ap.IsValid() {
			return unmapAddrPort(ap), nil
		}
	}
	return netip.AddrPort{}, addr
}

// startPushed installs the session as pp's receiver instead of starting a
// read loop.
func (s *UDPSession) startPushed(pp PacketPusher) {
	s.pusher = pp
	close(s.loopDone)
	pp.SetPacketReceiver(s.pushed)
}

// pushed is the session's receiver on a PacketPusher conn.
func (s *UDPSession) pushed(b []byte, addr net.Addr, err error) {
	if err != nil {
		s.mu.Lock()
		released := s.released
		if !released {
			s.pend.InErrs++
		}
		s.mu.Unlock()
		if !released {
			s.breakLink(opError("read", s.conn, s.remote, err))
		}
		return
	}
	if len(b) > mtuLimit {
		return
	}
	ap, from := pushSource(addr)
	s.rxDatagram(b, ap, from)
}

// startPushed installs the listener as pp's receiver instead of starting a
// read loop.
func (l *Listener) startPushed(pp PacketPusher) {
	l.pusher = pp
	close(l.loopDone)
	pp.SetPacketReceiver(l.pushed)
}

// pushed is the listener's receiver on a PacketPusher conn.
func (l *Listener) pushed(b []byte, addr net.Addr, err error) {
	if err != nil {
		l.mu.Lock()
		if !l.closed && l.readErr == nil {
			l.readErr = opError("read", l.conn, nil, err)
		}
		l.mu.Unlock()
		notify(l.chAccept)
		return
	}
	if len(b) > mtuLimit || addr == nil {
		return
	}
	ap, from := pushSource(addr)
	l.handle(b, ap, from)
}
