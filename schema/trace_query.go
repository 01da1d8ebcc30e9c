package schema

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Where a car is now (CarStatus.Where).
const (
	WhereOnLine  = "on the line"
	WhereOnHold  = "on hold"
	WhereShipped = "shipped"
)

// Result filters of the trace questions.
const (
	ResultOK  = "OK"
	ResultNOK = "NOK"
)

// Rows a station question returns (StationQuery.Rows).
const (
	RowsVisits = "visits"
	RowsJoints = "joints"
	RowsTests  = "tests"
)

// TraceLimitDefault is the most rows a list question returns unless its
// Limit says otherwise; an answer cut short says so (Truncated).
const TraceLimitDefault = 100000

// ErrBadQuestion is wrapped by the errors of a trace question that cannot
// be asked as given: an empty key, a window that ends before it starts, an
// unknown row kind or result.
var ErrBadQuestion = errors.New("bad trace question")

// notText returns an error wrapping ErrBadQuestion that names what, when
// one of vs is not text the record can hold (not UTF-8, or with a NUL):
// no row can match it.
func notText(what string, vs ...string) error {
	for _, v := range vs {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return fmt.Errorf("%w: %s %q is not UTF-8 text", ErrBadQuestion, what, v)
		}
	}
	return nil
}

// CarStatus is where a car is now: shipped, on hold (some hold is open,
// the quality gate will block it) or on the line at its last station.
type CarStatus struct {
	VIN         string     `json:"vin"`
	Model       string     `json:"model"`
	Variant     string     `json:"variant"`
	Colour      string     `json:"colour"`
	Where       string     `json:"where"`
	LastStation string     `json:"last_station"`
	LastSeenAt  time.Time  `json:"last_seen_at"`
	ShippedAt   *time.Time `json:"shipped_at,omitempty"`
	OpenHolds   int        `json:"open_holds"`
}

func statusOf(v Vehicle, holds []HoldRecord) CarStatus {
	s := CarStatus{VIN: v.VIN, Model: v.Model, Variant: v.Variant, Colour: v.Colour, LastStation: v.LastStation, LastSeenAt: v.LastSeenAt}
	for _, h := range holds {
		if h.ClosedAt.IsZero() {
			s.OpenHolds++
		}
	}
	switch {
	case !v.ShippedAt.IsZero():
		t := v.ShippedAt
		s.ShippedAt, s.Where = &t, WhereShipped
	case s.OpenHolds > 0:
		s.Where = WhereOnHold
	default:
		s.Where = WhereOnLine
	}
	return s
}

// Statuses returns where each of vins is now, ordered by VIN; unknown VINs
// are left out.
func (s *Store) Statuses(ctx context.Context, vins []string) ([]CarStatus, error) {
	return statuses(ctx, s.pool, vins)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func statuses(ctx context.Context, q querier, vins []string) ([]CarStatus, error) {
	out := []CarStatus{}
	if len(vins) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `
		SELECT v.vin, v.model, v.variant, v.colour, v.last_station, v.last_seen_at, v.shipped_at,
			(SELECT count(*) FROM holds h WHERE h.vin = v.vin AND h.closed_at IS NULL)
		FROM vehicles v WHERE v.vin = ANY($1) ORDER BY v.vin`, vins)
	if err != nil {
		return nil, fmt.Errorf("car status: %w", err)
	}
	var c CarStatus
	var shipped *time.Time
	_, err = pgx.ForEachRow(rows, []any{&c.VIN, &c.Model, &c.Variant, &c.Colour, &c.LastStation, &c.LastSeenAt, &shipped, &c.OpenHolds}, func() error {
		c.ShippedAt = nil
		switch {
		case shipped != nil:
			t := *shipped
			c.ShippedAt, c.Where = &t, WhereShipped
		case c.OpenHolds > 0:
			c.Where = WhereOnHold
		default:
			c.Where = WhereOnLine
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("car status: %w", err)
	}
	return out, nil
}

// PartUse is one part installed in a car.
type PartUse struct {
	VIN         string    `json:"vin"`
	Station     string    `json:"station"`
	PartNumber  string    `json:"part_number"`
	Serial      string    `json:"serial"`
	Lot         string    `json:"lot"`
	Supplier    string    `json:"supplier"`
	InstalledAt time.Time `json:"installed_at"`
	EventID     string    `json:"event_id"`
}

// PartAnswer answers a part or lot question: every use of the parts and
// every affected car with where it is now.
type PartAnswer struct {
	Uses      []PartUse   `json:"uses"`
	Cars      []CarStatus `json:"cars"`
	Truncated bool        `json:"truncated,omitempty"`
}

// LotQuery asks which cars got parts of the given lots, optionally only of
// one part number and one supplier.
type LotQuery struct {
	Lots       []string
	PartNumber string // "" for any
	Supplier   string // "" for any
	// Limit defaults to TraceLimitDefault.
	Limit int
}

// ByLot answers q: every part of the lots installed, ordered by time, and
// the cars that got them. Only the months of the lots' installation span
// (part_lots) are read.
func (s *Store) ByLot(ctx context.Context, q LotQuery) (*PartAnswer, error) {
	if len(q.Lots) == 0 || hasEmpty(q.Lots) {
		return nil, fmt.Errorf("%w: give one or more lots", ErrBadQuestion)
	}
	for _, e := range []error{notText("lot", q.Lots...), notText("part number", q.PartNumber), notText("supplier", q.Supplier)} {
		if e != nil {
			return nil, e
		}
	}
	limit := limitOr(q.Limit)
	return s.partAnswer(ctx, "lot", limit, func(tx pgx.Tx) (pgx.Rows, error) {
		var from, to *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(first_at), max(last_at) FROM part_lots
			WHERE lot = ANY($1) AND ($2 = '' OR part_number = $2) AND ($3 = '' OR supplier = $3)`,
			q.Lots, q.PartNumber, q.Supplier).Scan(&from, &to); err != nil {
			return nil, err
		}
		if from == nil {
			from, to = &time.Time{}, &time.Time{} // no such lot: an empty window
		}
		return tx.Query(ctx, `
			SELECT vin, station, part_number, serial, lot, supplier, installed_at, event_id FROM installed_parts
			WHERE lot = ANY($1) AND ($2 = '' OR part_number = $2) AND ($3 = '' OR supplier = $3)
				AND installed_at BETWEEN $4 AND $5
			ORDER BY installed_at, event_id, slot LIMIT $6`, q.Lots, q.PartNumber, q.Supplier, *from, *to, limit+1)
	})
}

// ByPart answers which cars got the parts with the given serials: every
// installation, ordered by time, and the cars.
func (s *Store) ByPart(ctx context.Context, serials []string) (*PartAnswer, error) {
	if len(serials) == 0 || hasEmpty(serials) {
		return nil, fmt.Errorf("%w: give one or more part serials", ErrBadQuestion)
	}
	if err := notText("part serial", serials...); err != nil {
		return nil, err
	}
	return s.partAnswer(ctx, "part", TraceLimitDefault, func(tx pgx.Tx) (pgx.Rows, error) {
		return tx.Query(ctx, `
			SELECT vin, station, part_number, serial, lot, supplier, installed_at, event_id FROM installed_parts
			WHERE serial = ANY($1) AND serial <> ''
			ORDER BY installed_at, event_id, slot LIMIT $2`, serials, TraceLimitDefault+1)
	})
}

// partAnswer reads the part uses query returns (at most limit+1 rows) and
// the statuses of their cars in one snapshot.
func (s *Store) partAnswer(ctx context.Context, what string, limit int, query func(pgx.Tx) (pgx.Rows, error)) (*PartAnswer, error) {
	a := &PartAnswer{Uses: []PartUse{}}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		rows, err := query(tx)
		if err != nil {
			return err
		}
		var u PartUse
		if _, err := pgx.ForEachRow(rows, []any{&u.VIN, &u.Station, &u.PartNumber, &u.Serial, &u.Lot, &u.Supplier, &u.InstalledAt, &u.EventID}, func() error {
			a.Uses = append(a.Uses, u)
			return nil
		}); err != nil {
			return err
		}
		if len(a.Uses) > limit {
			a.Uses, a.Truncated = a.Uses[:limit], true
		}
		vins := make([]string, len(a.Uses))
		for i, u := range a.Uses {
			vins[i] = u.VIN
		}
		a.Cars, err = statuses(ctx, tx, dedupe(vins))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", what, err)
	}
	return a, nil
}

// JointRow is one joint made on a car.
type JointRow struct {
	VIN      string    `json:"vin"`
	Station  string    `json:"station"`
	Joint    string    `json:"joint"`
	Tool     string    `json:"tool"`
	TorqueNm *float64  `json:"torque_nm"` // nil: unknown
	AngleDeg *float64  `json:"angle_deg"`
	OK       *bool     `json:"ok"`
	MadeAt   time.Time `json:"made_at"`
	EventID  string    `json:"event_id"`
}

// TestRow is one test made on a car.
type TestRow struct {
	VIN      string    `json:"vin"`
	Station  string    `json:"station"`
	Name     string    `json:"name"`
	Value    *float64  `json:"value"` // nil: unknown
	Unit     string    `json:"unit"`
	Low      *float64  `json:"low"`
	High     *float64  `json:"high"`
	OK       *bool     `json:"ok"`
	TestedAt time.Time `json:"tested_at"`
	EventID  string    `json:"event_id"`
}

// VisitRow is one station cycle on a car.
type VisitRow struct {
	VIN        string     `json:"vin"`
	Station    string     `json:"station"`
	Result     string     `json:"result"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt time.Time  `json:"finished_at"`
	EventID    string     `json:"event_id"`
}

// WindowAnswer answers a tool or station question: the rows in the window,
// ordered by time, and the cars they belong to.
type WindowAnswer struct {
	Visits []VisitRow `json:"visits,omitempty"`
	Joints []JointRow `json:"joints,omitempty"`
	Tests  []TestRow  `json:"tests,omitempty"`
	// Tightenings answer a tightening question (ByTightening).
	Tightenings []TighteningRecord `json:"tightenings,omitempty"`
	Cars        []CarStatus        `json:"cars"`
	Truncated   bool               `json:"truncated,omitempty"`
}

// ToolQuery asks which joints a torque tool made in [From, To).
type ToolQuery struct {
	Tool     string
	From, To time.Time
	Result   string // "", ResultOK or ResultNOK
	Limit    int    // defaults to TraceLimitDefault
}

// ByTool answers q: every joint the tool made in the window and the cars.
func (s *Store) ByTool(ctx context.Context, q ToolQuery) (*WindowAnswer, error) {
	if q.Tool == "" {
		return nil, fmt.Errorf("%w: give a tool", ErrBadQuestion)
	}
	if err := notText("tool", q.Tool); err != nil {
		return nil, err
	}
	if err := checkWindow(q.From, q.To, q.Result); err != nil {
		return nil, err
	}
	a := &WindowAnswer{Joints: []JointRow{}}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		var err error
		a.Joints, a.Truncated, err = joints(ctx, tx, limitOr(q.Limit), `tool = $1`, q.Tool, q.From, q.To, q.Result)
		if err != nil {
			return err
		}
		vins := make([]string, len(a.Joints))
		for i, j := range a.Joints {
			vins[i] = j.VIN
		}
		a.Cars, err = statuses(ctx, tx, dedupe(vins))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trace tool %s: %w", q.Tool, err)
	}
	return a, nil
}

// StationQuery asks what a station did in [From, To): its cycles
// (RowsVisits, the default), joints (RowsJoints) or tests (RowsTests),
// optionally only one joint or test by Name and only OK or NOK results.
type StationQuery struct {
	Station  string
	From, To time.Time
	Rows     string
	Name     string
	Result   string // "", ResultOK or ResultNOK
	Limit    int    // defaults to TraceLimitDefault
}

// ByStation answers q: the rows in the window, ordered by time, and the
// cars they belong to.
func (s *Store) ByStation(ctx context.Context, q StationQuery) (*WindowAnswer, error) {
	if q.Station == "" {
		return nil, fmt.Errorf("%w: give a station", ErrBadQuestion)
	}
	for _, e := range []error{notText("station", q.Station), notText("name", q.Name)} {
		if e != nil {
			return nil, e
		}
	}
	if err := checkWindow(q.From, q.To, q.Result); err != nil {
		return nil, err
	}
	if q.Rows == "" {
		q.Rows = RowsVisits
	}
	if q.Rows == RowsVisits && q.Name != "" {
		return nil, fmt.Errorf("%w: a name picks a joint or a test: ask for joints or tests", ErrBadQuestion)
	}
	limit := limitOr(q.Limit)
	a := &WindowAnswer{}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		var err error
		var vins []string
		switch q.Rows {
		case RowsVisits:
			a.Visits, a.Truncated, err = visits(ctx, tx, limit, q)
			for _, v := range a.Visits {
				vins = append(vins, v.VIN)
			}
		case RowsJoints:
			a.Joints, a.Truncated, err = joints(ctx, tx, limit, `station = $1 AND ($5 = '' OR joint = $5)`, q.Station, q.From, q.To, q.Result, q.Name)
			for _, j := range a.Joints {
				vins = append(vins, j.VIN)
			}
		case RowsTests:
			a.Tests, a.Truncated, err = tests(ctx, tx, limit, q)
			for _, x := range a.Tests {
				vins = append(vins, x.VIN)
			}
		default:
			return fmt.Errorf("%w: rows %q: want %s, %s or %s", ErrBadQuestion, q.Rows, RowsVisits, RowsJoints, RowsTests)
		}
		if err != nil {
			return err
		}
		a.Cars, err = statuses(ctx, tx, dedupe(vins))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trace station %s: %w", q.Station, err)
	}
	return a, nil
}

// okSQL turns a result filter into a condition on ok, written out so that
// the partial indexes of NOK rows serve NOK questions.
func okSQL(result string) string {
	switch result {
	case ResultOK:
		return " AND ok"
	case ResultNOK:
		return " AND NOT ok"
	}
	return ""
}

// joints reads joints matching where ($1 the key, $5 an optional extra)
// in the window [$2, $3) with the result filter and limit $4.
func joints(ctx context.Context, tx pgx.Tx, limit int, where string, key string, from, to time.Time, result string, extra ...string) ([]JointRow, bool, error) {
	args := []any{key, from, to, limit + 1}
	if len(extra) > 0 {
		args = append(args, extra[0])
	}
	rows, err := tx.Query(ctx, `SELECT vin, station, joint, tool, torque_nm, angle_deg, ok, made_at, event_id FROM joints
		WHERE `+where+` AND made_at >= $2 AND made_at < $3`+okSQL(result)+`
		ORDER BY made_at, event_id, slot LIMIT $4`, args...)
	if err != nil {
		return nil, false, err
	}
	out := []JointRow{}
	var j JointRow
	if _, err := pgx.ForEachRow(rows, []any{&j.VIN, &j.Station, &j.Joint, &j.Tool, &j.TorqueNm, &j.AngleDeg, &j.OK, &j.MadeAt, &j.EventID}, func() error {
		out = append(out, j)
		return nil
	}); err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func tests(ctx context.Context, tx pgx.Tx, limit int, q StationQuery) ([]TestRow, bool, error) {
	rows, err := tx.Query(ctx, `SELECT vin, station, name, value, unit, low, high, ok, tested_at, event_id FROM test_results
		WHERE station = $1 AND tested_at >= $2 AND tested_at < $3 AND ($5 = '' OR name = $5)`+okSQL(q.Result)+`
		ORDER BY tested_at, event_id, slot LIMIT $4`, q.Station, q.From, q.To, limit+1, q.Name)
	if err != nil {
		return nil, false, err
	}
	out := []TestRow{}
	var x TestRow
	if _, err := pgx.ForEachRow(rows, []any{&x.VIN, &x.Station, &x.Name, &x.Value, &x.Unit, &x.Low, &x.High, &x.OK, &x.TestedAt, &x.EventID}, func() error {
		out = append(out, x)
		return nil
	}); err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func visits(ctx context.Context, tx pgx.Tx, limit int, q StationQuery) ([]VisitRow, bool, error) {
	rows, err := tx.Query(ctx, `SELECT vin, station, result, started_at, finished_at, event_id FROM station_visits
		WHERE station = $1 AND finished_at >= $2 AND finished_at < $3 AND ($4 = '' OR result = $4)
		ORDER BY finished_at, event_id LIMIT $5`, q.Station, q.From, q.To, q.Result, limit+1)
	if err != nil {
		return nil, false, err
	}
	out := []VisitRow{}
	var v VisitRow
	var started *time.Time
	if _, err := pgx.ForEachRow(rows, []any{&v.VIN, &v.Station, &v.Result, &started, &v.FinishedAt, &v.EventID}, func() error {
		v.StartedAt = nil
		if started != nil {
			t := *started
			v.StartedAt = &t
		}
		out = append(out, v)
		return nil
	}); err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func checkWindow(from, to time.Time, result string) error {
	if from.IsZero() || to.IsZero() || !to.After(from) {
		return fmt.Errorf("%w: window %s to %s: give a start before the end", ErrBadQuestion, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if result != "" && result != ResultOK && result != ResultNOK {
		return fmt.Errorf("%w: result %q: want %s or %s", ErrBadQuestion, result, ResultOK, ResultNOK)
	}
	return nil
}

// readOnlyBegin starts the transaction of a trace question: read-only and
// repeatable read, so an answer and the car statuses in it come from one
// snapshot, with generic plans, so that each question is planned once per
// connection and prunes the partitions it does not need when it runs
// instead of being planned again over every partition each time.
const readOnlyBegin = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan`

// readOnly runs fn in the transaction of a trace question.
func readOnly(ctx context.Context, s *Store, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{BeginQuery: readOnlyBegin}, fn)
}

func limitOr(n int) int {
	if n <= 0 {
		return TraceLimitDefault
	}
	return n
}

func hasEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

// dedupe returns the distinct strings of ss, sorted.
func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
