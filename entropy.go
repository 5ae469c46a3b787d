package kcp

import (
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Nonce entropy.
//
// Every sealed packet starts with a fresh random nonce (16 bytes for the CFB
// family, the AEAD's nonce size otherwise). The nonce need not be secret, only
// unpredictable and unrepeated, so it comes from a fast CSPRNG seeded from
// crypto/rand rather than from crypto/rand itself on every packet.
//
// The source is a package global because that is kcp-go's API: SetEntropy takes
// no session, and kcp-go users call it once at start-up. Sharing one source is
// sound because nonces from one CSPRNG never need to be coordinated between
// sessions. What must not be shared is mutable generator state behind one lock:
// the built-in sources keep one generator per P (in a sync.Pool), so sessions on
// different cores never contend, and the global itself is an atomic pointer, so
// SetEntropy may run while sessions are sending.

// entropyReseed is how many refills a generator serves before it is rekeyed
// from crypto/rand, which limits how much output any one key produces.
const entropyReseed = 1 << 24

// hasAESHardware reports CPU instructions that make AES faster than ChaCha8.
var hasAESHardware = (cpu.X86.HasAES && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3) ||
	cpu.ARM64.HasAES || cpu.S390X.HasAES ||
	runtime.GOARCH == "ppc64" || runtime.GOARCH == "ppc64le"

// entropyRef boxes a user-supplied reader so that it can live in an atomic
// pointer.
type entropyRef struct{ r io.Reader }

var (
	// userEntropy is the source installed by SetEntropy; nil means builtinEntropy.
	userEntropy atomic.Pointer[entropyRef]
	// builtinEntropy is the default source. Creating it only allocates a small
	// struct: generators are made and seeded lazily, on first use on each P.
	builtinEntropy = newEntropyPool()
)

// generator is one CSPRNG state, used by one goroutine at a time.
type generator interface {
	fill(p []byte)
}

// entropyPool is an io.Reader that hands each reading goroutine its own generator
// from a sync.Pool: no lock is shared between cores, and it is safe for concurrent
// use.
type entropyPool struct {
	pool sync.Pool
}

func newEntropyPool() *entropyPool {
	if hasAESHardware {
		return newEntropyPoolOf(func() generator { return newAESGenerator() })
	}
	return newEntropyPoolOf(func() generator { return newChaCha8Generator() })
}

func newEntropyPoolOf(mk func() generator) *entropyPool {
	e := new(entropyPool)
	e.pool.New = func() any { return mk() }
	return e
}

// Read fills p with random bytes. It always returns len(p), nil.
func (e *entropyPool) Read(p []byte) (int, error) {
	e.fill(p)
	return len(p), nil
}

func (e *entropyPool) fill(p []byte) {
	if len(p) == 0 {
		return
	}
	g := e.pool.Get().(generator)
	g.fill(p)
	e.pool.Put(g)
}

// NewEntropy returns a new cryptographically strong random source for packet
// nonces: AES-based where the CPU has AES instructions, ChaCha8-based otherwise.
// It is seeded from crypto/rand, rekeys itself periodically, never returns an
// error, and is safe for concurrent use without a shared lock (it keeps one
// generator per P).
func NewEntropy() io.Reader {
	return newEntropyPool()
}

// NewEntropyAES returns a random source that runs AES-128 in counter mode under
// a key from crypto/rand, rekeyed every 2^24 blocks. It never returns an error
// and is safe for concurrent use without a shared lock.
func NewEntropyAES() io.Reader {
	return newEntropyPoolOf(func() generator { return newAESGenerator() })
}

// NewEntropyChacha8 returns a random source built on math/rand/v2's ChaCha8
// generator, seeded from crypto/rand and reseeded every 2^24 reads. It never
// returns an error and is safe for concurrent use without a shared lock.
func NewEntropyChacha8() io.Reader {
	return newEntropyPoolOf(func() generator { return newChaCha8Generator() })
}

// SetEntropy replaces the process-wide source of packet nonces used by every
// session and listener. It is safe to call at any time, also while sessions run:
// packets sealed after it returns use r. A nil r restores the built-in source.
// r must be safe for concurrent use. If r returns an error or too few bytes, that
// nonce is taken from the built-in source instead, so a failing reader never
// produces a predictable nonce.
func SetEntropy(r io.Reader) {
	if r == nil {
		userEntropy.Store(nil)
		return
	}
	userEntropy.Store(&entropyRef{r: r})
}

// fillNonce fills p with nonce bytes from the current entropy source.
func fillNonce(p []byte) {
	if ref := userEntropy.Load(); ref != nil {
		if _, err := io.ReadFull(ref.r, p); err == nil {
			return
		}
	}
	builtinEntropy.fill(p)
}

// nonceBatch draws the nonces of one batch of datagrams from one generator
// of the built-in source, taken once for the batch, or, when SetEntropy has
// installed a reader, from that reader with one Read per nonce (a custom
// reader may count on that, and kcp-go reads it per datagram). Either way the
// nonces come out in the order fill is called, as fillNonce on each in turn
// would give them. Use it from one goroutine, and call done once at the end.
type nonceBatch struct {
	g    generator // the built-in source's generator; nil with a user reader
	user *entropyRef
}

// startNonces begins a batch.
func startNonces() nonceBatch {
	if ref := userEntropy.Load(); ref != nil {
		return nonceBatch{user: ref}
	}
	return nonceBatch{g: builtinEntropy.pool.Get().(generator)}
}

// fill fills p with the next nonce.
func (b *nonceBatch) fill(p []byte) {
	if b.g != nil {
		b.g.fill(p)
		return
	}
	if _, err := io.ReadFull(b.user.r, p); err != nil {
		builtinEntropy.fill(p) // never a predictable nonce (see SetEntropy)
	}
}

// done gives the generator back.
func (b *nonceBatch) done() {
	if b.g != nil {
		builtinEntropy.pool.Put(b.g)
		b.g = nil
	}
}

// aesGenerator produces AES-128-CTR keystream.
type aesGenerator struct {
	block cipher.Block
	ctr   [aes.BlockSize]byte
	out   [aes.BlockSize]byte
	avail int    // unread bytes at the end of out
	uses  uint64 // blocks produced under the current key
}

func newAESGenerator() *aesGenerator {
	g := new(aesGenerator)
	g.rekey()
	return g
}

func (g *aesGenerator) rekey() {
	var key [16]byte
	crand.Read(key[:])
	crand.Read(g.ctr[:])
	block, err := aes.NewCipher(key[:])
	if err != nil { // impossible: the key length is fixed at 16
		panic("kcp: aes.NewCipher: " + err.Error())
	}
	g.block = block
	g.uses = 0
	g.avail = 0
}

func (g *aesGenerator) fill(p []byte) {
	for len(p) > 0 {
		if g.avail == 0 {
			if g.uses >= entropyReseed {
				g.rekey()
			}
			for i := len(g.ctr) - 1; i >= 0; i-- {
				g.ctr[i]++
				if g.ctr[i] != 0 {
					break
				}
			}
			g.block.Encrypt(g.out[:], g.ctr[:])
			g.uses++
			g.avail = len(g.out)
		}
		n := copy(p, g.out[len(g.out)-g.avail:])
		g.avail -= n
		p = p[n:]
	}
}

// chacha8Generator wraps math/rand/v2's ChaCha8 with periodic reseeding.
type chacha8Generator struct {
	rng  *rand.ChaCha8
	uses uint64
}

func newChaCha8Generator() *chacha8Generator {
	var seed [32]byte
	crand.Read(seed[:])
	return &chacha8Generator{rng: rand.NewChaCha8(seed)}
}

func (g *chacha8Generator) fill(p []byte) {
	if g.uses >= entropyReseed {
		var seed [32]byte
		crand.Read(seed[:])
		g.rng.Seed(seed)
		g.uses = 0
	}
	g.uses++
	g.rng.Read(p)
}
