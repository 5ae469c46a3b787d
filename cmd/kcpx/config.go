package main

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	kcp "github.com/kcpx/kcp"
)

// kcptunSalt and kcptunIterations are kcptun's key derivation: the session
// key is PBKDF2-HMAC-SHA1(key, "kcp-go", 4096 iterations, 32 bytes).
const (
	kcptunSalt       = "kcp-go"
	kcptunIterations = 4096
	kcptunKeyLen     = 32
	kcptunDefaultKey = "it's a secrect" // kcptun's default -key, spelling included
)

// ciphers maps kcptun's -crypt names to a constructor and the key bytes it
// takes from the derived key (0: all 32).
var ciphers = map[string]struct {
	keyLen int
	make   func(key []byte) (kcp.BlockCrypt, error)
}{
	"aes":         {0, kcp.NewAESBlockCrypt},
	"aes-128":     {16, kcp.NewAESBlockCrypt},
	"aes-192":     {24, kcp.NewAESBlockCrypt},
	"aes-128-gcm": {16, kcp.NewAESGCMCrypt},
	"salsa20":     {0, kcp.NewSalsa20BlockCrypt},
	"blowfish":    {0, kcp.NewBlowfishBlockCrypt},
	"twofish":     {0, kcp.NewTwofishBlockCrypt},
	"cast5":       {16, kcp.NewCast5BlockCrypt},
	"3des":        {24, kcp.NewTripleDESBlockCrypt},
	"tea":         {16, kcp.NewTEABlockCrypt},
	"xtea":        {16, kcp.NewXTEABlockCrypt},
	"sm4":         {16, kcp.NewSM4BlockCrypt},
	"xor":         {0, kcp.NewSimpleXORBlockCrypt},
	"none":        {0, kcp.NewNoneBlockCrypt},
	"null":        {0, nil}, // no cipher and no header: raw KCP
}

func cipherNames() string {
	names := make([]string, 0, len(ciphers))
	for n := range ciphers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// presets are kcptun's -mode values: nodelay, interval (ms), resend, nc.
var presets = map[string][4]int{
	"normal": {0, 40, 2, 1},
	"fast":   {0, 30, 2, 1},
	"fast2":  {1, 20, 2, 1},
	"fast3":  {1, 10, 2, 1},
}

// linkConfig is every knob of a session, shared by perf and cat.
type linkConfig struct {
	Crypt      string `json:"crypt"`
	key        string
	DataShards int    `json:"datashard"`
	Parity     int    `json:"parityshard"`
	Mode       string `json:"mode"`
	SndWnd     int    `json:"sndwnd"`
	RcvWnd     int    `json:"rcvwnd"`
	MTU        int    `json:"mtu"`
	Stream     bool   `json:"stream"`
	AckNoDelay bool   `json:"acknodelay"`
	RateLimit  uint   `json:"ratelimit"`
	CC         string `json:"cc"`
	QlogDir    string `json:"-"`
}

// register adds the link flags to fs, with kcptun's defaults where it has
// them.
func (c *linkConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Crypt, "crypt", "aes", "cipher: "+cipherNames())
	fs.StringVar(&c.key, "key", kcptunDefaultKey, "pre-shared secret (kcptun's key derivation)")
	fs.IntVar(&c.DataShards, "datashard", 10, "FEC data shards (0: FEC off)")
	fs.IntVar(&c.Parity, "parityshard", 3, "FEC parity shards (0: FEC off)")
	fs.StringVar(&c.Mode, "mode", "fast", "nodelay preset: normal, fast, fast2, fast3")
	fs.IntVar(&c.SndWnd, "sndwnd", 1024, "send window (segments)")
	fs.IntVar(&c.RcvWnd, "rcvwnd", 1024, "receive window (segments)")
	fs.IntVar(&c.MTU, "mtu", 1350, "largest UDP payload (bytes)")
	fs.BoolVar(&c.Stream, "stream", true, "stream mode (false: message mode)")
	fs.BoolVar(&c.AckNoDelay, "acknodelay", false, "send ACKs at once instead of at the next flush")
	fs.UintVar(&c.RateLimit, "ratelimit", 0, "cap on sent bytes per second (0: none)")
	fs.StringVar(&c.CC, "cc", "", "congestion control: kcp, none, bbr, cubic (default: what -mode's nc selects)")
	fs.StringVar(&c.QlogDir, "qlog", "", "write a qlog trace of each session into this directory")
}

// check validates the flags.
func (c *linkConfig) check() error {
	if _, ok := ciphers[c.Crypt]; !ok {
		return fmt.Errorf("unknown -crypt %q (one of %s)", c.Crypt, cipherNames())
	}
	if _, ok := presets[c.Mode]; !ok {
		return fmt.Errorf("unknown -mode %q (normal, fast, fast2, fast3)", c.Mode)
	}
	if c.DataShards < 0 || c.Parity < 0 || c.DataShards+c.Parity > 255 {
		return fmt.Errorf("FEC %d/%d out of range", c.DataShards, c.Parity)
	}
	if c.CC != "" {
		switch c.CC {
		case kcp.CongestionKCP, kcp.CongestionNone, kcp.CongestionBBR, kcp.CongestionCUBIC:
		default:
			return fmt.Errorf("unknown -cc %q (kcp, none, bbr, cubic)", c.CC)
		}
	}
	if c.RateLimit > 1<<32-1 {
		return fmt.Errorf("-ratelimit %d above 4 GB/s", c.RateLimit)
	}
	return nil
}

// deriveKey is kcptun's key derivation.
func deriveKey(secret string) []byte {
	k, err := pbkdf2.Key(sha1.New, secret, []byte(kcptunSalt), kcptunIterations, kcptunKeyLen)
	if err != nil {
		panic(err) // only for lengths FIPS mode refuses; 32 bytes is not one
	}
	return k
}

// block builds the cipher.
func (c *linkConfig) block() (kcp.BlockCrypt, error) {
	ci := ciphers[c.Crypt]
	if ci.make == nil {
		return nil, nil
	}
	key := deriveKey(c.key)
	if ci.keyLen > 0 {
		key = key[:ci.keyLen]
	}
	return ci.make(key)
}

// apply sets the session's knobs.
func (c *linkConfig) apply(s *kcp.UDPSession) error {
	p := presets[c.Mode]
	s.SetNoDelay(p[0], p[1], p[2], p[3])
	s.SetWindowSize(c.SndWnd, c.RcvWnd)
	if !s.SetMtu(c.MTU) {
		return fmt.Errorf("-mtu %d leaves no room for data with this cipher and FEC", c.MTU)
	}
	s.SetStreamMode(c.Stream)
	s.SetACKNoDelay(c.AckNoDelay)
	s.SetRateLimit(uint32(c.RateLimit))
	if c.CC != "" {
		if err := s.SetCongestionControl(c.CC); err != nil {
			return err
		}
	}
	s.SetLinger(30 * time.Second)
	return nil
}

// String describes the link in one line.
func (c *linkConfig) String() string {
	fec := "off"
	if c.DataShards > 0 && c.Parity > 0 {
		fec = fmt.Sprintf("%d/%d", c.DataShards, c.Parity)
	}
	mode := "message"
	if c.Stream {
		mode = "stream"
	}
	return fmt.Sprintf("crypt %s, fec %s, mode %s, wnd %d/%d, mtu %d, %s", c.Crypt, fec, c.Mode, c.SndWnd, c.RcvWnd, c.MTU, mode)
}

// closeWatch is the session's tracer: it passes events on to an optional
// qlog tracer and reports when the session has released everything, so the
// program does not exit while a closed session still drains.
type closeWatch struct {
	kcp.Tracer // nil or the qlog tracer
	once       sync.Once
	done       chan struct{}
}

// watch installs a closeWatch on s, with a qlog tracer when c asks for one.
func (c *linkConfig) watch(s *kcp.UDPSession, vantage string) (*closeWatch, error) {
	w := &closeWatch{done: make(chan struct{})}
	if c.QlogDir != "" {
		q, err := kcp.OpenQlogFile(c.QlogDir, vantage, s.GetConv())
		if err != nil {
			return nil, err
		}
		w.Tracer = q
	}
	s.SetTracer(w)
	return w, nil
}

func (w *closeWatch) DatagramSent(k kcp.DatagramKind, n int, b []byte) {
	if w.Tracer != nil {
		w.Tracer.DatagramSent(k, n, b)
	}
}

func (w *closeWatch) DatagramReceived(k kcp.DatagramKind, n int, b []byte) {
	if w.Tracer != nil {
		w.Tracer.DatagramReceived(k, n, b)
	}
}

func (w *closeWatch) SegmentLost(sn uint32, r kcp.LossReason) {
	if w.Tracer != nil {
		w.Tracer.SegmentLost(sn, r)
	}
}

func (w *closeWatch) SegmentRetransmitted(sn, xmit uint32) {
	if w.Tracer != nil {
		w.Tracer.SegmentRetransmitted(sn, xmit)
	}
}

func (w *closeWatch) MetricsUpdated(m kcp.TraceMetrics) {
	if w.Tracer != nil {
		w.Tracer.MetricsUpdated(m)
	}
}

func (w *closeWatch) FECRecovered(n int) {
	if w.Tracer != nil {
		w.Tracer.FECRecovered(n)
	}
}

func (w *closeWatch) StateChanged(st kcp.SessionState) {
	if w.Tracer != nil {
		w.Tracer.StateChanged(st)
	}
	if st == kcp.StateClosed {
		w.once.Do(func() { close(w.done) })
	}
}

// closeAndWait closes s and waits until it has released everything (its
// data acknowledged and the close signal answered, or the linger bound).
func closeAndWait(s *kcp.UDPSession, w *closeWatch) {
	s.Close()
	<-w.done
}

// flagSetFor returns a flag set holding only the link flags.
func flagSetFor(c *linkConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("kcpx", flag.ContinueOnError)
	c.register(fs)
	return fs
}
