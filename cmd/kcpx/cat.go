package main

// kcpx cat: netcat over KCP. Bytes from stdin go to the peer, bytes from the
// peer go to stdout. It ends when stdin ends (after the peer acknowledged
// every byte: KCP has no half-close, so the peer's later bytes are lost) or
// when the peer closes (Read returns EOF).

import (
	"errors"
	"flag"
	"fmt"
	"io"

	kcp "github.com/kcpx/kcp"
)

func catMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c linkConfig
	fs := flag.NewFlagSet("kcpx cat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	listen := fs.Bool("l", false, "listen on ADDR for one peer instead of dialling ADDR")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kcpx cat [flags] HOST:PORT | kcpx cat -l [flags] :PORT")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := c.check(); err != nil {
		fmt.Fprintln(stderr, "kcpx cat:", err)
		return 2
	}
	block, err := c.block()
	if err != nil {
		fmt.Fprintln(stderr, "kcpx cat:", err)
		return 1
	}
	var s *kcp.UDPSession
	if *listen {
		l, err := kcp.ListenWithOptions(fs.Arg(0), block, c.DataShards, c.Parity)
		if err != nil {
			fmt.Fprintln(stderr, "kcpx cat:", err)
			return 1
		}
		defer l.Close()
		s, err = l.AcceptKCP()
		if err != nil {
			fmt.Fprintln(stderr, "kcpx cat:", err)
			return 1
		}
	} else {
		s, err = kcp.DialWithOptions(fs.Arg(0), block, c.DataShards, c.Parity)
		if err != nil {
			fmt.Fprintln(stderr, "kcpx cat:", err)
			return 1
		}
	}
	if err := cat(s, &c, *listen, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "kcpx cat:", err)
		return 1
	}
	return 0
}

// cat copies both ways until stdin ends or the peer closes, then closes s
// and waits until it has released everything.
func cat(s *kcp.UDPSession, c *linkConfig, server bool, stdin io.Reader, stdout io.Writer) error {
	vantage := "client"
	if server {
		vantage = "server"
	}
	w, err := c.watch(s, vantage)
	if err != nil {
		s.Close()
		return err
	}
	if err := c.apply(s); err != nil {
		closeAndWait(s, w)
		return err
	}
	up := make(chan error, 1)
	go func() {
		_, err := io.Copy(s, stdin)
		up <- err
	}()
	down := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, s) // io.EOF once the peer closed and we read everything
		down <- err
	}()
	var res error
	select {
	case res = <-up: // stdin ended (nil) or the session failed
	case res = <-down: // the peer closed (nil) or the session failed
	}
	closeAndWait(s, w)
	return res
}
