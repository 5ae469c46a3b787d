// Command kcpx tests KCP links and moves bytes over them.
//
//	kcpx                      self-test: a perf run over loopback, then the table
//	kcpx perf -s :PORT        perf server (iperf for KCP)
//	kcpx perf -c HOST:PORT    perf client: live line per second, summary table
//	kcpx cat HOST:PORT        netcat over KCP: stdin to the peer, the peer to stdout
//	kcpx cat -l :PORT         the same, waiting for one peer
//
// Ciphers and keys follow kcptun (PBKDF2-SHA1 of -key, salt "kcp-go", 4096
// iterations, 32 bytes), so kcpx talks to kcptun-configured peers. Run
// "kcpx perf -h" or "kcpx cat -h" for every flag.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the command line: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return selfTest(stdout, stderr)
	}
	switch args[0] {
	case "perf":
		return perfMain(args[1:], stdout, stderr)
	case "cat":
		return catMain(args[1:], stdin, stdout, stderr)
	case "selftest":
		return selfTest(stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "kcpx: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  kcpx                    self-test over loopback
  kcpx perf -s :PORT      perf server
  kcpx perf -c HOST:PORT  perf client
  kcpx cat [-l] ADDR      netcat over KCP (stdin/stdout)
Run "kcpx perf -h" or "kcpx cat -h" for the flags.
`)
}
