package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TighteningQuery asks which tightenings were made in [From, To) by one
// tool (its serial number), one controller, or with one parameter set at
// a station: exactly one of Tool, Controller and Pset (with Station).
type TighteningQuery struct {
	Tool       string
	Controller string
	Station    string
	Pset       int
	From, To   time.Time
	Result     string // "", ResultOK or ResultNOK
	Limit      int    // defaults to TraceLimitDefault
}

// what names q in errors.
func (q TighteningQuery) what() string {
	switch {
	case q.Tool != "":
		return "tool " + q.Tool
	case q.Controller != "":
		return "controller " + q.Controller
	}
	return fmt.Sprintf("station %s pset %d", q.Station, q.Pset)
}

// ByTightening answers q: every tightening in the window, ordered by time,
// and the cars they were made on (WindowAnswer.Tightenings, Cars).
func (s *Store) ByTightening(ctx context.Context, q TighteningQuery) (*WindowAnswer, error) {
	n := 0
	for _, set := range []bool{q.Tool != "", q.Controller != "", q.Pset != 0 || q.Station != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: give one of a tool, a controller, or a station with a pset", ErrBadQuestion)
	}
	if q.Tool == "" && q.Controller == "" && (q.Station == "" || q.Pset <= 0) {
		return nil, fmt.Errorf("%w: a pset question needs the station and a pset from 1", ErrBadQuestion)
	}
	if err := checkWindow(q.From, q.To, q.Result); err != nil {
		return nil, err
	}
	where, key := `tool_serial = $1 AND tool_serial <> ''`, q.Tool
	switch {
	case q.Controller != "":
		where, key = `controller = $1`, q.Controller
	case q.Tool == "":
		where, key = `station = $1 AND pset = $5`, q.Station
	}
	result := ""
	switch q.Result {
	case ResultOK:
		result = ` AND result = 'OK'`
	case ResultNOK:
		result = ` AND result = 'NOK'`
	}
	limit := limitOr(q.Limit)
	args := []any{key, q.From, q.To, limit + 1}
	if q.Pset != 0 {
		args = append(args, q.Pset)
	}
	a := &WindowAnswer{Tightenings: []TighteningRecord{}}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+tighteningCols+` FROM tightenings
			WHERE `+where+` AND made_at >= $2 AND made_at < $3`+result+`
			ORDER BY made_at, controller, tightening_id LIMIT $4`, args...)
		if err != nil {
			return err
		}
		var vins []string
		if err := scanTightenings(rows, func(x Tightening) {
			a.Tightenings = append(a.Tightenings, x.Record())
			vins = append(vins, x.VIN)
		}); err != nil {
			return err
		}
		if len(a.Tightenings) > limit {
			a.Tightenings, a.Truncated, vins = a.Tightenings[:limit], true, vins[:limit]
		}
		a.Cars, err = statuses(ctx, tx, dedupe(vins))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", q.what(), err)
	}
	return a, nil
}

// tighteningCols are the columns of the tightenings table that
// scanTightenings reads, in its order.
const tighteningCols = `event_id, vin, station, controller, channel, tightening_id, tool_vin, pset, pset_name, batch_size, batch_counter,
	batch_status, result, torque_status, angle_status, torque_nm, torque_min_nm, torque_max_nm, torque_target_nm,
	angle_deg, angle_min_deg, angle_max_deg, angle_target_deg, torque_unit, coalesce(controller_time, 'epoch'), clock, joint, class,
	tool_serial, mid, made_while_disabled, made_at`

// scanTightenings reads rows of tighteningCols and calls fn with each.
func scanTightenings(rows pgx.Rows, fn func(Tightening)) error {
	var x Tightening
	var id int64
	_, err := pgx.ForEachRow(rows, []any{&x.EventID, &x.VIN, &x.Station, &x.Controller, &x.Channel, &id, &x.Tightening.VIN, &x.Pset, &x.PsetName,
		&x.BatchSize, &x.BatchCounter, &x.BatchStatus, &x.Result, &x.TorqueStatus, &x.AngleStatus, &x.TorqueNm, &x.TorqueMinNm, &x.TorqueMaxNm,
		&x.TorqueTargetNm, &x.AngleDeg, &x.AngleMinDeg, &x.AngleMaxDeg, &x.AngleTargetDeg, &x.TorqueUnit, &x.ControllerTime, &x.Clock,
		&x.Joint, &x.Class, &x.ToolSerial, &x.MID, &x.WhileDisabled, &x.MadeAt}, func() error {
		t := x
		t.TighteningID = uint32(id)
		if t.ControllerTime.Equal(time.Unix(0, 0)) {
			t.ControllerTime = time.Time{}
		}
		// The values are new pointers per row (pgx scans into fresh
		// ones only when the column is not NULL).
		t.TorqueNm, t.TorqueMinNm, t.TorqueMaxNm, t.TorqueTargetNm = clonef(x.TorqueNm), clonef(x.TorqueMinNm), clonef(x.TorqueMaxNm), clonef(x.TorqueTargetNm)
		t.AngleDeg, t.AngleMinDeg, t.AngleMaxDeg, t.AngleTargetDeg = clonef(x.AngleDeg), clonef(x.AngleMinDeg), clonef(x.AngleMaxDeg), clonef(x.AngleTargetDeg)
		fn(t)
		return nil
	})
	return err
}

func clonef(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
