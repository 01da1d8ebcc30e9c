package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries of the line supervisor's dashboard: the live tail of the
// record, the shift's numbers and the car search.

// LiveEvent is one recorded event as the live line needs it: the envelope's
// station and times, and the rows the tracker derived from it in the same
// transaction.
type LiveEvent struct {
	Seq        int64
	Kind       string // "cycle", "state" or "alarm"
	Station    string
	VIN        string
	OccurredAt time.Time

	// Visit is true for a cycle the tracker attributed to a car (a cycle
	// without a usable VIN has no visit). Result, StartedAt and the car's
	// model, variant and colour are set only then.
	Visit                  bool
	Result                 string
	StartedAt              time.Time // zero when unknown
	Model, Variant, Colour string

	// The station's state, for a state event.
	State      string
	FaultCode  int32
	FaultText  string
	Andon      bool
	VinPresent string

	// The alarm, for an alarm event: raised (AlarmActive) or cleared.
	AlarmActive bool
	AlarmCode   string
	AlarmText   string
	AlarmCycle  int64
}

// LiveEventsMax is the most events LiveEvents returns at once.
const LiveEventsMax = 5000

// LiveEvents returns up to limit events of plant and line recorded after
// seq, in record order. The event log's sequence numbers are given under a
// lock in commit order, so reading on from the last seq seen misses nothing.
// limit is capped at LiveEventsMax.
func (s *Store) LiveEvents(ctx context.Context, plant, line string, after int64, limit int) ([]LiveEvent, error) {
	limit = min(max(limit, 1), LiveEventsMax)
	rows, err := s.pool.Query(ctx, `
		SELECT e.seq, e.kind, e.station, coalesce(v.vin, e.vin), e.occurred_at,
		       v.event_id IS NOT NULL, coalesce(v.result, ''), coalesce(v.started_at, 'epoch'),
		       coalesce(c.model, ''), coalesce(c.variant, ''), coalesce(c.colour, ''),
		       coalesce(st.state, ''), coalesce(st.fault_code, 0), coalesce(st.fault_text, ''),
		       coalesce(st.andon, false), coalesce(st.vin_present, ''),
		       coalesce(a.active, false), coalesce(a.code, ''), coalesce(a.text, ''), coalesce(a.cycle, 0)
		FROM event_ids i
		JOIN event_log e ON e.seq = i.seq AND e.occurred_at = i.occurred_at
		LEFT JOIN station_visits v ON v.event_id = e.event_id AND v.finished_at = e.occurred_at
		LEFT JOIN vehicles c ON c.vin = v.vin
		LEFT JOIN station_states st ON st.event_id = e.event_id
		LEFT JOIN alarms a ON a.event_id = e.event_id
		WHERE i.seq > $1 AND e.plant = $2 AND e.line = $3
		ORDER BY i.seq
		LIMIT $4`, after, plant, line, limit)
	if err != nil {
		return nil, fmt.Errorf("live events after %d: %w", after, err)
	}
	var out []LiveEvent
	var e LiveEvent
	_, err = pgx.ForEachRow(rows, []any{&e.Seq, &e.Kind, &e.Station, &e.VIN, &e.OccurredAt,
		&e.Visit, &e.Result, &e.StartedAt, &e.Model, &e.Variant, &e.Colour,
		&e.State, &e.FaultCode, &e.FaultText, &e.Andon, &e.VinPresent,
		&e.AlarmActive, &e.AlarmCode, &e.AlarmText, &e.AlarmCycle}, func() error {
		if e.StartedAt.Equal(time.Unix(0, 0)) {
			e.StartedAt = time.Time{}
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("live events after %d: %w", after, err)
	}
	return out, nil
}

// LastSeq returns the sequence number of the newest event in the log (0
// when the log is empty).
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM chain_head WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("event log head: %w", err)
	}
	return seq, nil
}

// StationStatus is a station's latest recorded state; AndonSince is when
// its open andon call began (zero when Andon is false). Alarm is its
// current alarm (Code "" when none).
type StationStatus struct {
	StationState
	AndonSince time.Time
	Alarm      StationAlarm
}

// StationAlarm is a station's current alarm: an agent's diagnosis (event
// kind alarm), such as a cycle it refused to acknowledge.
type StationAlarm struct {
	Code string
	Text string
	// Cycle is the PLC cycle counter the alarm is about (0: none).
	Cycle int64
	// Since is when the agent raised it.
	Since time.Time
}

// StationStatuses returns each station's latest recorded state, ordered by
// station id.
func (s *Store) StationStatuses(ctx context.Context) ([]StationStatus, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT st.station, st.counter, st.state, st.fault_code, st.fault_text, st.andon, st.vin_present, st.changed_at,
		       CASE WHEN st.andon THEN coalesce((
		           SELECT min(x.changed_at) FROM station_states x
		           WHERE x.station = st.station AND x.changed_at > coalesce((
		               SELECT max(y.changed_at) FROM station_states y WHERE y.station = st.station AND NOT y.andon), '-infinity')),
		           st.changed_at) ELSE 'epoch' END,
		       st.alarm_code, st.alarm_text, st.alarm_cycle, coalesce(st.alarm_at, 'epoch')
		FROM station_status st ORDER BY st.station`)
	if err != nil {
		return nil, fmt.Errorf("station status: %w", err)
	}
	var out []StationStatus
	var x StationStatus
	_, err = pgx.ForEachRow(rows, []any{&x.Station, &x.Counter, &x.State, &x.FaultCode, &x.FaultText, &x.Andon, &x.VinPresent, &x.ChangedAt, &x.AndonSince,
		&x.Alarm.Code, &x.Alarm.Text, &x.Alarm.Cycle, &x.Alarm.Since}, func() error {
		if !x.Andon {
			x.AndonSince = time.Time{}
		}
		if x.Alarm.Code == "" {
			x.Alarm = StationAlarm{}
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("station status: %w", err)
	}
	return out, nil
}

// ShiftQuery asks for the record of a time window of one line.
type ShiftQuery struct {
	// From and To bound the window [From, To). Required, From before To.
	From, To time.Time
	// Stations are the line's stations. Required.
	Stations []string
	// Out is the station whose finished cycles count as cars out (the last
	// station of the line). Required.
	Out string
	// Holds is the most open holds listed. Defaults to HoldsListDefault.
	Holds int
}

// HoldsListDefault is the most open holds ShiftRecord lists by default.
const HoldsListDefault = 100

// StationCycles counts a station's finished cycles in a window.
type StationCycles struct {
	Cycles, Good int64 // Good: result OK
}

// DownPeriod is a stretch of a window in which a station was in fault or
// maintenance, clipped to the window.
type DownPeriod struct {
	Station   string
	State     string // fault or maintenance
	FaultCode int32
	FaultText string
	From, To  time.Time
}

// OpenHold is a hold not yet closed, with the car it holds.
type OpenHold struct {
	VIN, Station, Kind, Reason string
	OpenedAt                   time.Time
	Model, Colour, LastStation string
}

// ShiftRecord is what the record says about a window, read in one
// snapshot.
type ShiftRecord struct {
	// CarsOut counts cars that finished the Out station in the window;
	// FirstPass those of them never held for a NOK or an unusable result:
	// every station cycle was OK the first time, no rework. (Route holds
	// do not count: they flag late or missing data, not the car.)
	CarsOut, FirstPass int64
	// Cycles are the finished cycles of each station with any.
	Cycles map[string]StationCycles
	// Down are the periods of fault and maintenance, by station and time.
	Down []DownPeriod
	// OpenHolds counts every open hold; Holds lists the newest.
	OpenHolds int64
	Holds     []OpenHold
	// Stations are the latest recorded states (andon calls among them).
	Stations []StationStatus
	// TerminalAndons are the andons pulled at station terminals and not
	// cleared since (people's decisions), by station.
	TerminalAndons []HumanAction
	// FirstSeen is the PLC time of the line's first event in the window
	// (any of its stations' cycles or state changes); zero when the line
	// was not seen in it. Honest OEE plans time from here, not from the
	// window's start, when the shift calendar gives no planned start.
	FirstSeen time.Time
}

// ShiftRecord reads the record of q's window in one read-only snapshot.
func (s *Store) ShiftRecord(ctx context.Context, q ShiftQuery) (*ShiftRecord, error) {
	if !q.From.Before(q.To) || len(q.Stations) == 0 || q.Out == "" {
		return nil, errors.New("shift record: want From before To, Stations and Out")
	}
	if q.Holds <= 0 {
		q.Holds = HoldsListDefault
	}
	out := &ShiftRecord{Cycles: map[string]StationCycles{}, Holds: []OpenHold{}, Down: []DownPeriod{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			SELECT count(DISTINCT v.vin),
			       count(DISTINCT v.vin) FILTER (WHERE NOT EXISTS (
			           SELECT 1 FROM holds h WHERE h.vin = v.vin AND h.kind IN ('nok', 'bad_data')))
			FROM station_visits v
			WHERE v.station = $3 AND v.finished_at >= $1 AND v.finished_at < $2`, q.From, q.To, q.Out).
			Scan(&out.CarsOut, &out.FirstPass); err != nil {
			return fmt.Errorf("cars out: %w", err)
		}

		rows, err := tx.Query(ctx, `
			SELECT station, count(*), count(*) FILTER (WHERE result = 'OK')
			FROM station_visits
			WHERE station = ANY($3) AND finished_at >= $1 AND finished_at < $2
			GROUP BY station`, q.From, q.To, q.Stations)
		if err != nil {
			return fmt.Errorf("station cycles: %w", err)
		}
		var st string
		var c StationCycles
		if _, err := pgx.ForEachRow(rows, []any{&st, &c.Cycles, &c.Good}, func() error {
			out.Cycles[st] = c
			return nil
		}); err != nil {
			return fmt.Errorf("station cycles: %w", err)
		}

		// Each state lasts until the station's next state; the state a
		// station was in when the window opened counts from From.
		rows, err = tx.Query(ctx, `
			WITH changes AS (
				SELECT station, counter, state, fault_code, fault_text, changed_at
				FROM station_states
				WHERE station = ANY($3) AND changed_at >= $1 AND changed_at < $2
				UNION ALL
				SELECT p.station, p.counter, p.state, p.fault_code, p.fault_text, p.changed_at
				FROM unnest($3::text[]) AS l(station)
				CROSS JOIN LATERAL (
					SELECT station, counter, state, fault_code, fault_text, changed_at FROM station_states x
					WHERE x.station = l.station AND x.changed_at < $1
					ORDER BY x.changed_at DESC, x.counter DESC LIMIT 1) p
			), spans AS (
				SELECT station, state, fault_code, fault_text, greatest(changed_at, $1) AS since,
				       coalesce(lead(changed_at) OVER (PARTITION BY station ORDER BY changed_at, counter), $2) AS until
				FROM changes
			)
			SELECT station, state, fault_code, fault_text, since, until FROM spans
			WHERE state IN ('fault', 'maintenance') AND until > since
			ORDER BY station, since`, q.From, q.To, q.Stations)
		if err != nil {
			return fmt.Errorf("down periods: %w", err)
		}
		var d DownPeriod
		if _, err := pgx.ForEachRow(rows, []any{&d.Station, &d.State, &d.FaultCode, &d.FaultText, &d.From, &d.To}, func() error {
			out.Down = append(out.Down, d)
			return nil
		}); err != nil {
			return fmt.Errorf("down periods: %w", err)
		}

		var first *time.Time
		if err := tx.QueryRow(ctx, `
			SELECT min(f.occurred_at) FROM unnest($3::text[]) AS l(station)
			CROSS JOIN LATERAL (
				SELECT e.occurred_at FROM event_log e
				WHERE e.station = l.station AND e.occurred_at >= $1 AND e.occurred_at < $2
				ORDER BY e.occurred_at LIMIT 1) f`, q.From, q.To, q.Stations).Scan(&first); err != nil {
			return fmt.Errorf("first seen: %w", err)
		}
		if first != nil {
			out.FirstSeen = *first
		}

		if err := tx.QueryRow(ctx, `SELECT count(*) FROM holds WHERE closed_at IS NULL`).Scan(&out.OpenHolds); err != nil {
			return fmt.Errorf("open holds: %w", err)
		}
		rows, err = tx.Query(ctx, `
			SELECT h.vin, h.station, h.kind, h.reason, h.opened_at,
			       coalesce(v.model, ''), coalesce(v.colour, ''), coalesce(v.last_station, '')
			FROM holds h LEFT JOIN vehicles v ON v.vin = h.vin
			WHERE h.closed_at IS NULL
			ORDER BY h.opened_at DESC, h.id DESC
			LIMIT $1`, q.Holds)
		if err != nil {
			return fmt.Errorf("open holds: %w", err)
		}
		var h OpenHold
		if _, err := pgx.ForEachRow(rows, []any{&h.VIN, &h.Station, &h.Kind, &h.Reason, &h.OpenedAt, &h.Model, &h.Colour, &h.LastStation}, func() error {
			out.Holds = append(out.Holds, h)
			return nil
		}); err != nil {
			return fmt.Errorf("open holds: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shift record %s..%s: %w", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), err)
	}
	if out.Stations, err = s.StationStatuses(ctx); err != nil {
		return nil, err
	}
	if out.TerminalAndons, err = s.TerminalAndons(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// TerminalAndons returns the andons pulled at station terminals that no
// later decision at the station cleared, by station.
func (s *Store) TerminalAndons(ctx context.Context) ([]HumanAction, error) {
	out, err := s.humanActions(ctx, `event_id IN (
		SELECT DISTINCT ON (station) event_id FROM human_actions WHERE action IN ('andon_pull', 'andon_clear')
		ORDER BY station, occurred_at DESC, event_id DESC) AND action = 'andon_pull' ORDER BY station`)
	if err != nil {
		return nil, fmt.Errorf("terminal andons: %w", err)
	}
	return out, nil
}

// FindCarsMax is the most cars FindCars returns.
const FindCarsMax = 20

// FindCars returns the cars whose VIN is q, or ends in q when q is shorter
// than a VIN (the last 6 characters are the car's serial), newest first,
// at most FindCarsMax. q is matched without regard to case or surrounding
// blanks; an empty q, or one that is not UTF-8 text, finds nothing.
func (s *Store) FindCars(ctx context.Context, q string) ([]Vehicle, error) {
	q = strings.ToUpper(strings.TrimSpace(q))
	if q == "" || notText("", q) != nil {
		return []Vehicle{}, nil
	}
	cond := `vin = $1`
	if len(q) < 17 {
		cond = `right(vin, length($1)) = $1`
	}
	rows, err := s.pool.Query(ctx, `
		SELECT vin, model, variant, colour, first_seen_at, last_seen_at, last_station, last_pos, coalesce(shipped_at, 'epoch')
		FROM vehicles WHERE `+cond+` ORDER BY last_seen_at DESC LIMIT $2`, q, FindCarsMax)
	if err != nil {
		return nil, fmt.Errorf("find cars %q: %w", q, err)
	}
	out := []Vehicle{}
	var v Vehicle
	_, err = pgx.ForEachRow(rows, []any{&v.VIN, &v.Model, &v.Variant, &v.Colour, &v.FirstSeenAt, &v.LastSeenAt, &v.LastStation, &v.LastPos, &v.ShippedAt}, func() error {
		if v.ShippedAt.Equal(time.Unix(0, 0)) {
			v.ShippedAt = time.Time{}
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find cars %q: %w", q, err)
	}
	return out, nil
}
