package interop

import (
	"io"
	"net"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// KCPGo is kcp-go v5.6.72.
var KCPGo = Impl{
	Name: "kcp-go",
	Dial: func(raddr string, c Cipher, pass []byte, ds, ps int) (Session, error) {
		block, err := c.KCPGo(pass)
		if err != nil {
			return nil, err
		}
		s, err := kcpgo.DialWithOptions(raddr, block, ds, ps)
		if err != nil {
			return nil, err
		}
		return s, nil
	},
	NewConn: func(conv uint32, raddr net.Addr, c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Session, error) {
		block, err := c.KCPGo(pass)
		if err != nil {
			return nil, err
		}
		s, err := kcpgo.NewConn3(conv, raddr, block, ds, ps, conn)
		if err != nil {
			return nil, err
		}
		return s, nil
	},
	Listen: func(laddr string, c Cipher, pass []byte, ds, ps int) (Listener, error) {
		block, err := c.KCPGo(pass)
		if err != nil {
			return nil, err
		}
		l, err := kcpgo.ListenWithOptions(laddr, block, ds, ps)
		if err != nil {
			return nil, err
		}
		return kcpgoListener{l}, nil
	},
	ServeConn: func(c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Listener, error) {
		block, err := c.KCPGo(pass)
		if err != nil {
			return nil, err
		}
		l, err := kcpgo.ServeConn(block, ds, ps, conn)
		if err != nil {
			return nil, err
		}
		return kcpgoListener{l}, nil
	},
	SetOOBHandler: func(s Session, f func([]byte)) error {
		return s.(*kcpgo.UDPSession).SetOOBHandler(f)
	},
	SetEntropy: func(r io.Reader) { kcpgo.SetEntropy(r) },
	NewEntropy: func() io.Reader { return kcpgo.NewEntropy() },
	Snmp:       func() Counters { return Counters(*kcpgo.DefaultSnmp.Copy()) },
}

type kcpgoListener struct{ *kcpgo.Listener }

func (l kcpgoListener) AcceptSession() (Session, error) {
	s, err := l.AcceptKCP()
	if err != nil {
		return nil, err
	}
	return s, nil
}
