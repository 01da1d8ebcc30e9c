package web

import "github.com/prometheus/client_golang/prometheus"

// The tests hash with cheap argon2id parameters, so the many sign-ins of
// the lockout and session tests take milliseconds; TestHashPasswordUses
// RFC9106Params checks the real ones (the constants) separately.
func init() { hashParams = testParams }

var testParams = params{time: 1, memory: 1024, threads: 1, keyLen: Argon2KeyLen}

// RefusedCount reads keiline_web_refused_total{reason} from the default
// registry (tests run in parallel: compare rises, not values).
func RefusedCount(reason string) float64 {
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "keiline_web_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
