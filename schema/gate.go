package schema

import (
	"context"
	"fmt"
	"time"
)

// GateDecision is the quality gate's verdict on a car that reached it:
// released only when the car had no open hold, else blocked.
type GateDecision struct {
	EventID   string    `json:"event_id"`
	VIN       string    `json:"vin"`
	Station   string    `json:"station"`
	Released  bool      `json:"released"`
	OpenHolds int       `json:"open_holds"`
	Reason    string    `json:"reason,omitempty"` // the open holds, when blocked
	DecidedAt time.Time `json:"decided_at"`
	// Kind is GateKindGate for the gate's own decision on its cycle, or
	// GateKindRelease for a release recorded when a later event closed
	// the holds that had blocked the car (ReleaseAfterHolds).
	Kind string `json:"kind"`
}

// Kinds of gate decisions.
const (
	GateKindGate    = "gate"
	GateKindRelease = "release"
)

// DecideGate records the gate's decision on vin for the cycle eventID at
// station: released when vin has no open hold at this point of the
// transaction, blocked otherwise, naming each open hold. Holds opened
// earlier in the same transaction count, so open them first. A second
// decision for the same event is a no-op. It returns the decision.
func (t *Tx) DecideGate(ctx context.Context, vin, station, eventID string, at time.Time) (GateDecision, error) {
	d := GateDecision{EventID: eventID, VIN: vin, Station: station, DecidedAt: at, Kind: GateKindGate}
	err := t.tx.QueryRow(ctx, `
		WITH open AS (
			SELECT count(*) AS n,
				coalesce(string_agg(kind || ' hold from ' || station || ' (' || opened_event_id || '): ' || reason, '; ' ORDER BY id), '') AS why
			FROM holds WHERE vin = $1 AND closed_at IS NULL
		), ins AS (
			INSERT INTO gate_decisions (event_id, vin, station, released, open_holds, reason, decided_at)
			SELECT $3, $1, $2, n = 0, n, why, $4 FROM open
			ON CONFLICT (event_id) DO NOTHING
		)
		SELECT n = 0, n, why FROM open`, vin, station, eventID, at).Scan(&d.Released, &d.OpenHolds, &d.Reason)
	if err != nil {
		return d, fmt.Errorf("vin %s: gate %s: event %s: %w", vin, station, eventID, err)
	}
	return d, nil
}

// ReleaseAfterHolds records the release of vin by the event eventID that
// closed its holds, when the car's latest gate decision is a block and it
// has no open hold now (open this transaction's holds first). The release
// is dated at, or at the block if that is later (the closing event reached
// the tracker after the gate's, though it happened before). A release for
// the same event again is a no-op. It reports whether it released.
func (t *Tx) ReleaseAfterHolds(ctx context.Context, vin, eventID string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `
		WITH last AS (
			SELECT station, released, decided_at, event_id FROM gate_decisions WHERE vin = $1
			ORDER BY decided_at DESC, kind DESC, event_id DESC LIMIT 1
		)
		INSERT INTO gate_decisions (event_id, vin, station, released, open_holds, reason, decided_at, kind)
		SELECT $2, $1, last.station, true, 0, 'holds closed by ' || $2 || ' after the gate blocked the car (' || last.event_id || ')',
			greatest($3, last.decided_at), 'release'
		FROM last WHERE NOT last.released AND NOT EXISTS (SELECT 1 FROM holds WHERE vin = $1 AND closed_at IS NULL)
		ON CONFLICT (event_id) DO NOTHING`, vin, eventID, at)
	if err != nil {
		return false, fmt.Errorf("vin %s: release after holds closed by %s: %w", vin, eventID, err)
	}
	return tag.RowsAffected() > 0, nil
}
