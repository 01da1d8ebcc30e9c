package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KindRetention is keiline's own record of a retention run that removed
// a month of the event log: the record (schema.ApplyRetention) appends it
// to the hash-chained log in the transaction that removes the month, with
// every run of rows retention has removed so far (the cumulative list),
// so the audit can prove the table of removed runs (chain_gaps) was not
// extended out of band to hide deleted events. No station publishes this
// kind: ValidateFor refuses it.
const KindRetention = "retention"

// RetentionStation is the station field of a retention event: keiline
// itself, no station of the line.
const RetentionStation = "keiline"

// Retention is the data of a KindRetention event.
type Retention struct {
	// Month is the month (UTC, first day) this run removed.
	Month time.Time `json:"month"`
	// Gaps are all runs of event log rows retention has removed, this
	// month's included, by first seq.
	Gaps []RetentionGap `json:"gaps"`
}

// RetentionGap is one run of consecutive event log rows retention removed.
type RetentionGap struct {
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// LastHash is the hash of the run's last row, the one the next row
	// links to.
	LastHash []byte `json:"last_hash"`
	Rows     int64  `json:"rows"`
	// Partition is the event log partition the run was in.
	Partition string `json:"partition"`
}

// RetentionID is the id of the retention event at event log seq that
// removed month of plant's log (a month can be removed again when a late
// event gave it a partition again).
func RetentionID(plant, line string, month time.Time, seq int64) string {
	return plant + "." + line + "." + RetentionStation + "." + KindRetention + "." + month.UTC().Format("2006-01") + "." + strconv.FormatInt(seq, 10)
}

// IsRetentionID reports whether id is the id of a retention event
// (RetentionID). The id is covered by the chain hash, the kind column is
// not: the audit finds retention events by id.
func IsRetentionID(id string) bool {
	return strings.Contains(id, "."+RetentionStation+"."+KindRetention+".")
}

// NewRetention is the retention event of month, to be logged at seq, filed
// under plant and line (the record's), at now (keiline's clock), with the
// cumulative gaps.
func NewRetention(plant, line string, month time.Time, seq int64, gaps []RetentionGap, now time.Time) (*Event, error) {
	if gaps == nil {
		gaps = []RetentionGap{}
	}
	b, err := json.Marshal(&Retention{Month: month.UTC(), Gaps: gaps})
	if err != nil {
		return nil, fmt.Errorf("retention of %s: %w", month.Format("2006-01"), err)
	}
	now = now.UTC().Truncate(time.Microsecond) // as the record keeps times
	return &Event{Version: Version, ID: RetentionID(plant, line, month, seq), Kind: KindRetention, Plant: plant, Line: line,
		Station: RetentionStation, OccurredAt: now, RecordedAt: now, Data: b}, nil
}

// Retention decodes the data of a retention event.
func (ev *Event) Retention() (*Retention, error) {
	var r Retention
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		return nil, fmt.Errorf("%w: event %q: retention data: %v", ErrMalformed, ev.ID, err)
	}
	return &r, nil
}
