package web

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the web side: counts only, no names.
var (
	metricSignIns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_web_sign_ins_total", Help: "Password checks (sign-in, signature, password change) by result: ok, refused, rate_limited.",
	}, []string{"result"})
	metricLockouts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_web_lockouts_total", Help: "Accounts locked after too many wrong passwords.",
	})
	metricRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_web_refused_total",
		Help: "Requests refused by the security middleware by reason: unauthenticated, forbidden, csrf, cross_origin, bad_token.",
	}, []string{"reason"})
)
