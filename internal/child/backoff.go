package child

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before restart number n: Initial doubling (Factor) up to Max, with
// ±Jitter spread so that many containers restarting together do not retry in lock-step.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	// Jitter is the fraction of the delay that is randomised: 0.2 gives delay·[0.8, 1.2].
	Jitter float64
	// ResetAfter: a child that ran at least this long before failing is considered to have
	// recovered, and the next delay starts again from Initial.
	ResetAfter time.Duration
}

// DefaultBackoff is 1 s doubling to 5 min with ±20% jitter, reset after 10 min of healthy run.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.2, ResetAfter: 10 * time.Minute}

// Delay returns the wait before the attempt-th restart (attempt counts from 1). rnd supplies the
// jitter; nil means no jitter. The result never exceeds Max·(1+Jitter) and never goes below
// Initial·(1-Jitter).
func (b Backoff) Delay(attempt int, rnd *rand.Rand) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	factor := b.Factor
	if factor < 1 {
		factor = 2
	}
	d := float64(b.Initial) * math.Pow(factor, float64(attempt-1))
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	if rnd != nil && b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rnd.Float64()-1)
	}
	return time.Duration(d)
}
