package loadgen

import (
	"fmt"
	"math/rand/v2"
)

// Key distributions.
const (
	Uniform = "uniform"
	Zipfian = "zipfian"
)

// keyPicker picks key indexes in [0, n) by a distribution. Each worker has
// its own: rand sources are not safe for concurrent use.
type keyPicker struct {
	n    uint64
	rng  *rand.Rand
	zipf *rand.Zipf
}

// zipfS is the Zipf exponent: YCSB's default skew (0.99) is not accepted by
// math/rand (s must be > 1), so the closest accepted value is used.
const zipfS = 1.01

func newKeyPicker(dist string, n int, seed uint64) (*keyPicker, error) {
	if n <= 0 {
		return nil, fmt.Errorf("key count must be positive, got %d", n)
	}
	p := &keyPicker{n: uint64(n), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	switch dist {
	case Uniform, "":
	case Zipfian:
		p.zipf = rand.NewZipf(p.rng, zipfS, 1, p.n-1)
	default:
		return nil, fmt.Errorf("unknown key distribution %q: want %s or %s", dist, Uniform, Zipfian)
	}
	return p, nil
}

// next returns a key index. Zipfian ranks are scattered over the key space
// (a fixed permutation) so hot keys are not all neighbours in a scan.
func (p *keyPicker) next() int {
	if p.zipf == nil {
		return int(p.rng.Uint64N(p.n))
	}
	r := p.zipf.Uint64()
	return int((r*2654435761 + 12345) % p.n)
}

// keyName is the key of index i: fixed width, so byte order is index order.
func keyName(i int) string { return fmt.Sprintf("k%08d", i) }
