//go:build interop_sess

package interop

import (
	"io"
	"net"

	kcpx "github.com/kcpx/kcp"
)

// KCPX is kcpx, the library under test.
var KCPX = Impl{
	Name: "kcpx",
	Dial: func(raddr string, c Cipher, pass []byte, ds, ps int) (Session, error) {
		block, err := c.KCPX(pass)
		if err != nil {
			return nil, err
		}
		s, err := kcpx.DialWithOptions(raddr, block, ds, ps)
		if err != nil {
			return nil, err
		}
		return s, nil
	},
	NewConn: func(conv uint32, raddr net.Addr, c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Session, error) {
		block, err := c.KCPX(pass)
		if err != nil {
			return nil, err
		}
		s, err := kcpx.NewConn3(conv, raddr, block, ds, ps, conn)
		if err != nil {
			return nil, err
		}
		return s, nil
	},
	Listen: func(laddr string, c Cipher, pass []byte, ds, ps int) (Listener, error) {
		block, err := c.KCPX(pass)
		if err != nil {
			return nil, err
		}
		l, err := kcpx.ListenWithOptions(laddr, block, ds, ps)
		if err != nil {
			return nil, err
		}
		return kcpxListener{l}, nil
	},
	ServeConn: func(c Cipher, pass []byte, ds, ps int, conn net.PacketConn) (Listener, error) {
		block, err := c.KCPX(pass)
		if err != nil {
			return nil, err
		}
		l, err := kcpx.ServeConn(block, ds, ps, conn)
		if err != nil {
			return nil, err
		}
		return kcpxListener{l}, nil
	},
	SetOOBHandler: func(s Session, f func([]byte)) error {
		return s.(*kcpx.UDPSession).SetOOBHandler(f)
	},
	SetEntropy: func(r io.Reader) { kcpx.SetEntropy(r) },
	NewEntropy: func() io.Reader { return kcpx.NewEntropy() },
	Snmp:       func() Counters { return Counters(*kcpx.DefaultSnmp.Copy()) },
}

type kcpxListener struct{ *kcpx.Listener }

func (l kcpxListener) AcceptSession() (Session, error) {
	s, err := l.AcceptKCP()
	if err != nil {
		return nil, err
	}
	return s, nil
}
