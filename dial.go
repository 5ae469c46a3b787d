package kcp

import (
	"crypto/rand"
	"encoding/binary"
	"net"
)

// Dial connects to raddr ("host:port", network "udp") without a cipher
// and without FEC.
func Dial(raddr string) (net.Conn, error) {
	s, err := DialWithOptions(raddr, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DialWithOptions connects to raddr ("host:port", network "udp") from a new
// socket that the session owns. block seals every datagram (nil: none);
// dataShards and parityShards above zero turn FEC on (kcptun uses 10 and 3);
// either at zero means FEC off, as in kcp-go; a negative count or more than
// 255 shards together is an error. An empty raddr or port 0 is an error.
// No packet is sent until the first Write.
//
// The socket is connected to raddr. On Linux (and the BSDs) a port nobody
// listens on answers the first datagram with an ICMP port unreachable, and
// the session then fails at once: Read and Write return an error matching
// syscall.ECONNREFUSED, instead of a dead link some 20 s later. Once the
// peer has answered, such errors are skipped (a server restarting), and a
// silent peer is found by the dead-link and idle timeouts as before.
func DialWithOptions(raddr string, block BlockCrypt, dataShards, parityShards int) (*UDPSession, error) {
	if err := checkFECShards(dataShards, parityShards); err != nil {
		return nil, err
	}
	udpaddr, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		return nil, err
	}
	if udpaddr.Port == 0 {
		return nil, &net.OpError{Op: "dial", Net: "udp", Addr: udpaddr, Err: errNoRemotePort}
	}
	network := "udp"
	if udpaddr.IP.To4() != nil {
		network = "udp4"
	}
	// A connected socket: the kernel filters other sources, and an ICMP
	// port unreachable comes back as ECONNREFUSED on the next read, which
	// ends the session at once while the peer has never answered.
	conn, err := net.DialUDP(network, nil, udpaddr)
	if err != nil {
		return nil, err
	}
	tuneOwnSocket(conn)
	return NewConn4(randomConv(), udpaddr, block, dataShards, parityShards, true, conn)
}

// NewConn starts a session with raddr over conn, which stays the caller's
// (never closed by the session). The conv is random. An empty raddr or port
// 0 is an error.
func NewConn(raddr string, block BlockCrypt, dataShards, parityShards int, conn net.PacketConn) (*UDPSession, error) {
	udpaddr, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		return nil, err
	}
	if udpaddr.Port == 0 {
		return nil, &net.OpError{Op: "dial", Net: "udp", Addr: udpaddr, Err: errNoRemotePort}
	}
	return NewConn2(udpaddr, block, dataShards, parityShards, conn)
}

// NewConn2 is NewConn with a resolved address.
func NewConn2(raddr net.Addr, block BlockCrypt, dataShards, parityShards int, conn net.PacketConn) (*UDPSession, error) {
	return NewConn3(randomConv(), raddr, block, dataShards, parityShards, conn)
}

// NewConn3 is NewConn2 with a chosen conv: both ends must use the same.
func NewConn3(convid uint32, raddr net.Addr, block BlockCrypt, dataShards, parityShards int, conn net.PacketConn) (*UDPSession, error) {
	return NewConn4(convid, raddr, block, dataShards, parityShards, false, conn)
}

// NewConn4 starts a session with raddr over conn. With ownConn the session
// closes conn when it is released; otherwise conn stays the caller's, and the
// session stops reading it by setting a read deadline in the past when it is
// released (reset it before reusing the conn). FEC shard counts are checked
// as DialWithOptions checks them. The session only accepts
// datagrams from raddr. It reads conn on a goroutine of its own.
func NewConn4(convid uint32, raddr net.Addr, block BlockCrypt, dataShards, parityShards int, ownConn bool, conn net.PacketConn) (*UDPSession, error) {
	if conn == nil || raddr == nil {
		return nil, errInvalidOperation
	}
	if err := checkFECShards(dataShards, parityShards); err != nil {
		return nil, err
	}
	s := newUDPSession(convid, dataShards, parityShards, nil, conn, ownConn, raddr,
		newPacketCrypter(block), newSendQueue(newPacketWriter(conn)))
	return s, nil
}

// randomConv draws a conv from crypto/rand.
func randomConv() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
