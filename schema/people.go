package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// What the station terminals read of the record (issue 13): the car in a
// station with its build and open holds, whether a person's decision is
// committed, and the decisions about a car.

// CarAtStation is a car as a station terminal shows it: its build (model,
// variant, colour and, when the build sequence has it, the order's
// options) and its open holds.
type CarAtStation struct {
	VIN                    string
	Model, Variant, Colour string
	Options                []string
	LastStation            string
	Holds                  []HoldRecord
}

// StationVIN returns the car the station's PLC last reported present
// (VinPresent of its latest state), "" when none is or the station has
// reported no state.
func (s *Store) StationVIN(ctx context.Context, station string) (string, error) {
	var vin string
	err := s.pool.QueryRow(ctx, `SELECT vin_present FROM station_status WHERE station = $1`, station).Scan(&vin)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("station %s: car present: %w", station, err)
	}
	return vin, nil
}

// CarAt returns the car filed under vin with its build and open holds
// (oldest first). The error wraps ErrNotFound when the record has no such
// car.
func (s *Store) CarAt(ctx context.Context, vin string) (*CarAtStation, error) {
	c := &CarAtStation{VIN: vin, Options: []string{}}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT v.model, v.variant, v.colour, v.last_station, coalesce(b.options, '{}')
			FROM vehicles v LEFT JOIN build_sequence b ON b.vin = v.vin WHERE v.vin = $1`, vin).
			Scan(&c.Model, &c.Variant, &c.Colour, &c.LastStation, &c.Options)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("vin %s: %w", vin, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("vin %s: %w", vin, err)
		}
		rows, err := tx.Query(ctx, `SELECT id, station, kind, reason, opened_event_id, opened_at FROM holds
			WHERE vin = $1 AND closed_at IS NULL ORDER BY opened_at, id`, vin)
		if err != nil {
			return fmt.Errorf("vin %s: holds: %w", vin, err)
		}
		var h HoldRecord
		_, err = pgx.ForEachRow(rows, []any{&h.ID, &h.Station, &h.Kind, &h.Reason, &h.EventID, &h.At}, func() error {
			h.VIN = vin
			c.Holds = append(c.Holds, h)
			return nil
		})
		if err != nil {
			return fmt.Errorf("vin %s: holds: %w", vin, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// HasEvent reports whether the event log holds the event id: the tracker
// committed it.
func (s *Store) HasEvent(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM event_ids WHERE event_id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("event %s: %w", id, err)
	}
	return ok, nil
}

// HumanActions returns the decisions people made about the car vin,
// oldest first.
func (s *Store) HumanActions(ctx context.Context, vin string) ([]HumanAction, error) {
	return s.humanActions(ctx, `vin = $1 ORDER BY occurred_at, event_id`, vin)
}

// StationActions returns the decisions people made at station since
// (a stop's classification, an andon), newest first, at most limit.
func (s *Store) StationActions(ctx context.Context, station string, since time.Time, limit int) ([]HumanAction, error) {
	return s.humanActions(ctx, `station = $1 AND occurred_at >= $2 ORDER BY occurred_at DESC, event_id DESC LIMIT $3`, station, since, limitOr(limit))
}

func (s *Store) humanActions(ctx context.Context, where string, args ...any) ([]HumanAction, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, action, station, vin, user_id, user_name, role, reason, code, zone, severity, text,
		lot, meaning, cites, occurred_at FROM human_actions WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("human actions: %w", err)
	}
	var out []HumanAction
	var h HumanAction
	_, err = pgx.ForEachRow(rows, []any{&h.EventID, &h.Action, &h.Station, &h.VIN, &h.UserID, &h.User, &h.Role, &h.Reason, &h.Code,
		&h.Zone, &h.Severity, &h.Text, &h.Lot, &h.Meaning, &h.Cites, &h.At}, func() error {
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("human actions: %w", err)
	}
	return out, nil
}

// LastStop returns the station's latest state change to a state other
// than running (a stop), and false when it has none.
func (s *Store) LastStop(ctx context.Context, station string) (StationState, bool, error) {
	var st StationState
	err := s.pool.QueryRow(ctx, `SELECT event_id, station, counter, state, fault_code, fault_text, andon, vin_present, changed_at
		FROM station_states WHERE station = $1 AND state <> 'running' ORDER BY changed_at DESC LIMIT 1`, station).
		Scan(&st.EventID, &st.Station, &st.Counter, &st.State, &st.FaultCode, &st.FaultText, &st.Andon, &st.VinPresent, &st.ChangedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("station %s: last stop: %w", station, err)
	}
	return st, true, nil
}

// HumanAction returns the decision of event id; the error wraps
// ErrNotFound when the record has none.
func (s *Store) HumanAction(ctx context.Context, id string) (HumanAction, error) {
	out, err := s.humanActions(ctx, `event_id = $1`, id)
	if err != nil {
		return HumanAction{}, err
	}
	if len(out) == 0 {
		return HumanAction{}, fmt.Errorf("decision %s: %w", id, ErrNotFound)
	}
	return out[0], nil
}
