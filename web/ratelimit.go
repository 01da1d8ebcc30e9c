package web

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sign-in rate limits: token buckets per client address and per account
// name (as typed, whether or not it names a user, so a refusal tells
// nothing about which names exist).
const (
	// LoginAddressBurst attempts from one address may come at once, then
	// one per LoginAddressEvery.
	LoginAddressBurst = 30
	LoginAddressEvery = 2 * time.Second
	// LoginAccountBurst attempts on one account may come at once, then one
	// per LoginAccountEvery. It is at least LockoutThresholdDefault, so the
	// lockout, not the limiter, answers a guesser's tenth try.
	LoginAccountBurst = 10
	LoginAccountEvery = 30 * time.Second
	// limiterKeysMax bounds each limiter's memory. Only keys in debt are
	// kept (a full bucket is the same as none); when that many addresses
	// or names are in debt at once, new ones are refused until some refill.
	limiterKeysMax = 100_000
)

// limiter is a token bucket per key, on the caller's clock.
type limiter struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newLimiter(every time.Duration, burst int) *limiter {
	return &limiter{every: every, burst: burst, keys: make(map[string]*rate.Limiter)}
}

// allow takes one token of key's bucket at now and reports whether there
// was one.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.keys[key]
	if lim == nil {
		if len(l.keys) >= limiterKeysMax {
			l.sweep(now)
			if len(l.keys) >= limiterKeysMax {
				return false
			}
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.keys[key] = lim
	}
	return lim.AllowN(now, 1)
}

// sweep forgets the keys whose buckets have refilled.
func (l *limiter) sweep(now time.Time) {
	for k, lim := range l.keys {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.keys, k)
		}
	}
}

// clientAddr is the address a request came from: the peer's IP. A proxy's
// forwarding headers are not believed.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
