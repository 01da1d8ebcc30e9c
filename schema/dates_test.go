package schema_test

import (
	"time"

	"github.com/keiline/keiline/schema/tracetest"
)

// The tests derive their times from the clock, never from a fixed
// calendar date, so that no outcome depends on the day they run.

// pgTime is t as PostgreSQL prints a timestamptz in a UTC session:
// 2026-10-31 23:08:00.123456+00.
func pgTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00" }

// monthsAgo is the first instant (UTC) of the month n months before now's.
func monthsAgo(now time.Time, n int) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month()-time.Month(n), 1, 0, 0, 0, 0, time.UTC)
}

// forgedAt is when the forged event of TestAuditNamesTampering says it
// happened: three hours into the fixture's second month.
var forgedAt = tracetest.Start.Add(5 * time.Hour).Format(time.RFC3339)
