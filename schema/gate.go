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
}

// DecideGate records the gate's decision on vin for the cycle eventID at
// station: released when vin has no open hold at this point of the
// transaction, blocked otherwise, naming each open hold. Holds opened
// earlier in the same transaction count, so open them first. A second
// decision for the same event is a no-op. It returns the decision.
func (t *Tx) DecideGate(ctx context.Context, vin, station, eventID string, at time.Time) (GateDecision, error) {
	d := GateDecision{EventID: eventID, VIN: vin, Station: station, DecidedAt: at}
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
