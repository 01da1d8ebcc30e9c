package schema

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/keiline/keiline/spc"
)

// The record's side of statistical process control (issue 17): which
// characteristics the record holds, one characteristic's values in time
// order, and the control limits quality engineers froze (spc_limits,
// migration 00011).

// Characteristic kinds: what value of a joint or test is charted.
const (
	KindTorque = "torque" // joints.torque_nm, in Nm
	KindAngle  = "angle"  // joints.angle_deg, in degrees
	KindTest   = "test"   // test_results.value, in the test's unit
)

// Kinds are the characteristic kinds, in the order lists show them.
var Kinds = []string{KindTorque, KindAngle, KindTest}

// ErrBadCharacteristic is wrapped by the errors of a characteristic key or
// query that cannot be asked: an unknown kind, an empty station or name,
// a variant without its model, a window that ends before it starts.
var ErrBadCharacteristic = errors.New("bad characteristic")

// ErrLimitsChanged is returned by FreezeLimits when another version was
// frozen since the one the engineer replaced: reload and decide again.
var ErrLimitsChanged = errors.New("limits changed meanwhile")

// CharKey identifies a characteristic: a kind of value of a joint or test
// at a station, for every car (Model empty), one model, or one variant of
// a model.
type CharKey struct {
	Kind    string `json:"kind"`
	Station string `json:"station"`
	Name    string `json:"name"`
	Model   string `json:"model,omitempty"`
	Variant string `json:"variant,omitempty"`
}

// Validate reports a key that names no characteristic, with an error
// wrapping ErrBadCharacteristic.
func (k CharKey) Validate() error {
	switch {
	case !slices.Contains(Kinds, k.Kind):
		return fmt.Errorf("%w: kind %q; allowed: %s", ErrBadCharacteristic, k.Kind, strings.Join(Kinds, ", "))
	case k.Station == "" || k.Name == "":
		return fmt.Errorf("%w: %s: give the station and the joint or test name", ErrBadCharacteristic, k)
	case k.Variant != "" && k.Model == "":
		return fmt.Errorf("%w: %s: a variant needs its model", ErrBadCharacteristic, k)
	case len(k.Station)+len(k.Name)+len(k.Model)+len(k.Variant) > 400:
		return fmt.Errorf("%w: key too long", ErrBadCharacteristic)
	case notText("", k.Station, k.Name, k.Model, k.Variant) != nil:
		return fmt.Errorf("%w: %q: not UTF-8 text", ErrBadCharacteristic, k.String())
	}
	return nil
}

// String names the characteristic for people and logs:
// "torque C04 lug_fl_1", "test Q01 toe_front KV 4WD".
func (k CharKey) String() string {
	s := k.Kind + " " + k.Station + " " + k.Name
	if k.Model != "" {
		s += " " + k.Model
	}
	if k.Variant != "" {
		s += " " + k.Variant
	}
	return s
}

// Path is the key as URL path segments, kind/station/name[/model[/variant]],
// each escaped; ParseCharPath reads it back.
func (k CharKey) Path() string {
	parts := []string{k.Kind, k.Station, k.Name}
	if k.Model != "" {
		parts = append(parts, k.Model)
	}
	if k.Variant != "" {
		parts = append(parts, k.Variant)
	}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// ParseCharPath reads a key written by CharKey.Path. Errors wrap
// ErrBadCharacteristic.
func ParseCharPath(p string) (CharKey, error) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) < 3 || len(segs) > 5 {
		return CharKey{}, fmt.Errorf("%w: %q: want kind/station/name[/model[/variant]]", ErrBadCharacteristic, p)
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return CharKey{}, fmt.Errorf("%w: %q: %v", ErrBadCharacteristic, p, err)
		}
		segs[i] = u
	}
	k := CharKey{Kind: segs[0], Station: segs[1], Name: segs[2]}
	if len(segs) > 3 {
		k.Model = segs[3]
	}
	if len(segs) > 4 {
		k.Variant = segs[4]
	}
	return k, k.Validate()
}

// RecordSpec is what the record says about a characteristic's
// specification: the limits the PLC gave with each test value. Low and
// High are set when every value that gave one gave the same; Vary is true
// when they differ (the characteristic then mixes specifications, and
// should be charted per model or variant).
type RecordSpec struct {
	Low  *float64 `json:"low,omitempty"`
	High *float64 `json:"high,omitempty"`
	Vary bool     `json:"vary"`
}

// Characteristic is one characteristic the record holds values of in a
// window.
type Characteristic struct {
	CharKey
	Unit string `json:"unit"`
	// Values counts the known values; Unknown those the PLC could not
	// give (NULL), which SPC leaves out.
	Values  int64      `json:"values"`
	Unknown int64      `json:"unknown"`
	First   time.Time  `json:"first"`
	Last    time.Time  `json:"last"`
	Spec    RecordSpec `json:"spec"`
}

// CharacteristicQuery asks which characteristics have values in [From, To).
type CharacteristicQuery struct {
	From, To time.Time
}

// charGroup is one GROUP BY row of the characteristics query.
type charGroup struct {
	kind, station, name, model, variant, unit string
	values, unknown                           int64
	first, last                               time.Time
	lowMin, lowMax, highMin, highMax          pgtype.Float8
}

// Characteristics returns every characteristic with a value in q's window:
// each joint's torque and angle and each test's value, by station and
// name, ordered by station, name and kind. A test whose limits in the
// record differ between models or variants is also listed per model, or
// per variant where they differ within a model. Errors wrap
// ErrBadCharacteristic for a bad window.
func (s *Store) Characteristics(ctx context.Context, q CharacteristicQuery) ([]Characteristic, error) {
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: window %s..%s: want from before to", ErrBadCharacteristic, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	var groups []charGroup
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT j.station, j.joint, coalesce(v.model, ''), coalesce(v.variant, ''),
			       count(j.torque_nm), count(*) - count(j.torque_nm), count(j.angle_deg), count(*) - count(j.angle_deg),
			       min(j.made_at), max(j.made_at)
			FROM joints j LEFT JOIN vehicles v ON v.vin = j.vin
			WHERE j.made_at >= $1 AND j.made_at < $2
			GROUP BY 1, 2, 3, 4`, q.From, q.To)
		if err != nil {
			return fmt.Errorf("joints: %w", err)
		}
		var g charGroup
		var angles, angleUnknown int64
		if _, err := pgx.ForEachRow(rows, []any{&g.station, &g.name, &g.model, &g.variant, &g.values, &g.unknown, &angles, &angleUnknown, &g.first, &g.last}, func() error {
			t := g
			t.kind, t.unit = KindTorque, "Nm"
			a := g
			a.kind, a.unit, a.values, a.unknown = KindAngle, "°", angles, angleUnknown
			groups = append(groups, t, a)
			return nil
		}); err != nil {
			return fmt.Errorf("joints: %w", err)
		}
		rows, err = tx.Query(ctx, `
			SELECT t.station, t.name, coalesce(v.model, ''), coalesce(v.variant, ''), min(t.unit),
			       count(t.value), count(*) - count(t.value), min(t.tested_at), max(t.tested_at),
			       min(t.low), max(t.low), min(t.high), max(t.high)
			FROM test_results t LEFT JOIN vehicles v ON v.vin = t.vin
			WHERE t.tested_at >= $1 AND t.tested_at < $2
			GROUP BY 1, 2, 3, 4`, q.From, q.To)
		if err != nil {
			return fmt.Errorf("tests: %w", err)
		}
		g = charGroup{kind: KindTest}
		_, err = pgx.ForEachRow(rows, []any{&g.station, &g.name, &g.model, &g.variant, &g.unit, &g.values, &g.unknown, &g.first, &g.last,
			&g.lowMin, &g.lowMax, &g.highMin, &g.highMax}, func() error {
			groups = append(groups, g)
			return nil
		})
		if err != nil {
			return fmt.Errorf("tests: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("characteristics %s..%s: %w", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), err)
	}
	return mergeCharacteristics(groups), nil
}

// mergeCharacteristics sums the per-model-and-variant groups into one
// characteristic per kind, station and name, and adds per-model (or
// per-variant) characteristics where the record's limits differ.
func mergeCharacteristics(groups []charGroup) []Characteristic {
	type nameKey struct{ kind, station, name string }
	byName := map[nameKey][]charGroup{}
	var order []nameKey
	for _, g := range groups {
		k := nameKey{g.kind, g.station, g.name}
		if _, ok := byName[k]; !ok {
			order = append(order, k)
		}
		byName[k] = append(byName[k], g)
	}
	slices.SortFunc(order, func(a, b nameKey) int {
		return cmpStrings(a.station, b.station, a.name, b.name, kindOrder(a.kind), kindOrder(b.kind))
	})
	var out []Characteristic
	for _, k := range order {
		gs := byName[k]
		all := merge(CharKey{Kind: k.kind, Station: k.station, Name: k.name}, gs)
		if all.Values+all.Unknown == 0 {
			continue
		}
		out = append(out, all)
		if !all.Spec.Vary {
			continue
		}
		// Per model; per variant of a model whose limits still vary.
		models := map[string][]charGroup{}
		var names []string
		for _, g := range gs {
			if _, ok := models[g.model]; !ok {
				names = append(names, g.model)
			}
			models[g.model] = append(models[g.model], g)
		}
		slices.Sort(names)
		for _, m := range names {
			if m == "" {
				continue // values of cars the record knows no model of
			}
			mc := merge(CharKey{Kind: k.kind, Station: k.station, Name: k.name, Model: m}, models[m])
			if !mc.Spec.Vary {
				out = append(out, mc)
				continue
			}
			vs := models[m]
			slices.SortFunc(vs, func(a, b charGroup) int { return strings.Compare(a.variant, b.variant) })
			for _, g := range vs {
				out = append(out, merge(CharKey{Kind: k.kind, Station: k.station, Name: k.name, Model: m, Variant: g.variant}, []charGroup{g}))
			}
		}
	}
	return out
}

func merge(key CharKey, gs []charGroup) Characteristic {
	c := Characteristic{CharKey: key}
	var low, high bound
	for _, g := range gs {
		c.Values += g.values
		c.Unknown += g.unknown
		if c.First.IsZero() || g.first.Before(c.First) {
			c.First = g.first
		}
		if g.last.After(c.Last) {
			c.Last = g.last
		}
		if c.Unit == "" || (g.unit != "" && g.unit < c.Unit) {
			c.Unit = g.unit
		}
		low.add(g.lowMin, g.lowMax)
		high.add(g.highMin, g.highMax)
	}
	c.Spec = RecordSpec{Low: low.value(), High: high.value(), Vary: low.vary || high.vary}
	return c
}

// bound folds the min and max of a limit over groups.
type bound struct {
	set      bool
	min, max float64
	vary     bool
}

func (b *bound) add(lo, hi pgtype.Float8) {
	if !lo.Valid {
		return
	}
	if !b.set {
		b.set, b.min, b.max = true, lo.Float64, hi.Float64
	} else {
		b.min, b.max = min(b.min, lo.Float64), max(b.max, hi.Float64)
	}
	b.vary = b.min != b.max
}

func (b *bound) value() *float64 {
	if !b.set || b.vary {
		return nil
	}
	v := b.min
	return &v
}

func kindOrder(k string) string { return fmt.Sprint(slices.Index(Kinds, k)) }

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// seriesKey names a characteristic's Series reads for their buffers'
// size hint (the window moves with the clock: it is left out).
type seriesKey struct {
	key  CharKey
	last int
}

// SeriesQuery asks for one characteristic's values.
type SeriesQuery struct {
	Key CharKey
	// From and To bound the window [From, To). Required, From before To.
	From, To time.Time
	// Last, when above 0, keeps only the newest Last values of the window
	// (still returned oldest first).
	Last int
}

// Series is one characteristic's known values in a window, oldest first.
type Series struct {
	Key CharKey
	// Points are the values with the time they were made and the car's
	// VIN as the point's identity (spc.Point.ID); EventIDs[i] is the
	// event that recorded Points[i].
	Points   []spc.Point
	EventIDs []string
	// Unknown counts the values in the window the PLC could not give
	// (NULL): they are left out of Points, never taken as 0.
	Unknown int
	// Spec is the record's limits over the points (tests only).
	Spec RecordSpec
}

// Series reads q's values in time order (ties by event id and slot).
// A year of one line's history (hundreds of thousands of values) is read
// from the characteristic's covering index. Errors wrap
// ErrBadCharacteristic for a bad key or window.
func (s *Store) Series(ctx context.Context, q SeriesQuery) (*Series, error) {
	if err := q.Key.Validate(); err != nil {
		return nil, err
	}
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: %s: window %s..%s: want from before to", ErrBadCharacteristic, q.Key, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	sql, args := seriesSQL(q)
	rows, err := s.pool.Query(ctx, sql, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("series %s: %w", q.Key, err)
	}
	defer rows.Close()
	// A year of values is hundreds of thousands of rows: they are decoded
	// from the binary wire format by hand (see decodeSeriesRow), and the
	// VINs and event ids gathered in one buffer each and cut from one
	// string at the end, rather than a string allocated per row. The
	// buffers are sized from the last read of the same question, so a
	// chart read again does not grow them step by step.
	sk := seriesKey{q.Key, q.Last}
	n := 0
	if v, ok := s.seriesLen.Load(sk); ok {
		n = v.(int) + v.(int)/8 + 16
	}
	out := &Series{Key: q.Key, Points: make([]spc.Point, 0, n), EventIDs: []string{}}
	var lo, hi bound
	vins, ids := make([]byte, 0, n*17), make([]byte, 0, n*48)
	ends := make([][2]int, 0, n)
	for rows.Next() {
		p, vin, id, low, high, known, err := decodeSeriesRow(rows.RawValues())
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", q.Key, err)
		}
		if !known {
			out.Unknown++
			continue
		}
		vins, ids = append(vins, vin...), append(ids, id...)
		ends = append(ends, [2]int{len(vins), len(ids)})
		out.Points = append(out.Points, p)
		lo.add(low, low)
		hi.add(high, high)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series %s: %w", q.Key, err)
	}
	s.seriesLen.Store(sk, len(out.Points))
	allVINs, allIDs := string(vins), string(ids)
	out.EventIDs = make([]string, len(out.Points))
	var v0, i0 int
	for i, e := range ends {
		out.Points[i].ID, out.EventIDs[i] = allVINs[v0:e[0]], allIDs[i0:e[1]]
		v0, i0 = e[0], e[1]
	}
	if q.Last > 0 {
		slices.Reverse(out.Points)
		slices.Reverse(out.EventIDs)
	}
	out.Spec = RecordSpec{Low: lo.value(), High: hi.value(), Vary: lo.vary || hi.vary}
	return out, nil
}

// pgEpoch is PostgreSQL's timestamp epoch; a binary timestamptz is the
// microseconds since it.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeSeriesRow decodes one series row in binary format: timestamptz
// (int64 µs since 2000), text VIN, text event id, float8 value, float8 low
// and high (NULL: nil). The point has no ID: vin and eventID are the raw
// bytes, valid until the next row. known is false when the value is NULL.
func decodeSeriesRow(raw [][]byte) (p spc.Point, vin, eventID []byte, low, high pgtype.Float8, known bool, err error) {
	if len(raw) != 6 || len(raw[0]) != 8 {
		return p, nil, nil, low, high, false, fmt.Errorf("series row: want 6 binary columns, a timestamp first")
	}
	f8 := func(b []byte) (pgtype.Float8, error) {
		switch len(b) {
		case 0:
			if b == nil {
				return pgtype.Float8{}, nil
			}
		case 8:
			return pgtype.Float8{Float64: math.Float64frombits(binary.BigEndian.Uint64(b)), Valid: true}, nil
		}
		return pgtype.Float8{}, fmt.Errorf("series row: a float8 of %d bytes", len(b))
	}
	v, err := f8(raw[3])
	if err != nil {
		return p, nil, nil, low, high, false, err
	}
	if low, err = f8(raw[4]); err != nil {
		return p, nil, nil, low, high, false, err
	}
	if high, err = f8(raw[5]); err != nil {
		return p, nil, nil, low, high, false, err
	}
	us := int64(binary.BigEndian.Uint64(raw[0]))
	p = spc.Point{Value: v.Float64, Time: pgEpoch.Add(time.Duration(us) * time.Microsecond).Local()}
	return p, raw[1], raw[2], low, high, v.Valid, nil
}

// seriesSQL builds the query of a series: one table, one value column,
// the model and variant filter only when asked; the rows in time order
// (the characteristic index's order, so no sort).
func seriesSQL(q SeriesQuery) (string, []any) {
	table, name, at, value, low, high := "joints", "joint", "made_at", "torque_nm", "NULL::float8", "NULL::float8"
	switch q.Key.Kind {
	case KindAngle:
		value = "angle_deg"
	case KindTest:
		table, name, at, value, low, high = "test_results", "name", "tested_at", "value", "x.low", "x.high"
	}
	args := []any{q.Key.Station, q.Key.Name, q.From, q.To}
	var b strings.Builder
	fmt.Fprintf(&b, `SELECT x.%[1]s AS at, x.vin, x.event_id, x.%[2]s AS v, %[3]s AS low, %[4]s AS high FROM %[5]s x`, at, value, low, high, table)
	if q.Key.Model != "" {
		b.WriteString(` JOIN vehicles c ON c.vin = x.vin AND c.model = $5`)
		args = append(args, q.Key.Model)
		if q.Key.Variant != "" {
			b.WriteString(` AND c.variant = $6`)
			args = append(args, q.Key.Variant)
		}
	}
	fmt.Fprintf(&b, ` WHERE x.station = $1 AND x.%[1]s = $2 AND x.%[2]s >= $3 AND x.%[2]s < $4`, name, at)
	order := "ASC"
	if q.Last > 0 {
		order = "DESC"
	}
	fmt.Fprintf(&b, ` ORDER BY x.%[1]s %[2]s, x.event_id %[2]s, x.slot %[2]s`, at, order)
	if q.Last > 0 {
		fmt.Fprintf(&b, ` LIMIT %d`, q.Last)
	}
	return b.String(), args
}

// FrozenLimits is one version of a characteristic's control limits, as a
// quality engineer froze them from a baseline window.
type FrozenLimits struct {
	ID      int64   `json:"id"`
	Key     CharKey `json:"key"`
	Version int     `json:"version"`
	// Limits are the lines (spc.ComputeLimits of the baseline), with the
	// chart method, subgroup size and factor table they stand on.
	Limits spc.Limits `json:"limits"`
	// Rules are the run rules the characteristic is checked with.
	Rules []spc.Rule `json:"rules"`
	// BaselineFrom and BaselineTo are the window [from, to) chosen.
	BaselineFrom time.Time `json:"baseline_from"`
	BaselineTo   time.Time `json:"baseline_to"`
	// FrozenBy is who froze them; SignedIn says whether that is a signed-in
	// user (true) or a name typed on a dashboard without sign-in.
	FrozenBy string    `json:"frozen_by"`
	SignedIn bool      `json:"signed_in"`
	FrozenAt time.Time `json:"frozen_at"`
	Reason   string    `json:"reason"`
}

// Limits of FrozenLimits fields.
const (
	FrozenByMax = 200
	ReasonMax   = 2000
)

// Validate reports limits that cannot be stored, naming the field.
func (f *FrozenLimits) Validate() error {
	if err := f.Key.Validate(); err != nil {
		return err
	}
	if err := f.Limits.Validate(); err != nil {
		return fmt.Errorf("limits of %s: %w", f.Key, err)
	}
	if err := spc.ValidateRules(f.Rules); err != nil {
		return fmt.Errorf("limits of %s: %w", f.Key, err)
	}
	switch {
	case !f.BaselineFrom.Before(f.BaselineTo):
		return fmt.Errorf("%w: limits of %s: baseline window must end after it starts", ErrBadCharacteristic, f.Key)
	case strings.TrimSpace(f.FrozenBy) == "" || len(f.FrozenBy) > FrozenByMax:
		return fmt.Errorf("%w: limits of %s: frozen by: give who freezes them (at most %d bytes)", ErrBadCharacteristic, f.Key, FrozenByMax)
	case len(f.Reason) > ReasonMax:
		return fmt.Errorf("%w: limits of %s: reason longer than %d bytes", ErrBadCharacteristic, f.Key, ReasonMax)
	case f.FrozenAt.IsZero():
		return fmt.Errorf("%w: limits of %s: frozen at is required", ErrBadCharacteristic, f.Key)
	}
	return nil
}

// FreezeLimits stores f as the next version of its characteristic's
// limits and returns it with its id and version. replaces is the version
// the engineer saw and replaces (0 for the first): when another version
// was frozen since, nothing is stored and the error wraps
// ErrLimitsChanged. Nothing is ever updated: each freeze adds a row.
// The store must connect as RoleWeb (or the owner).
func (s *Store) FreezeLimits(ctx context.Context, f FrozenLimits, replaces int) (FrozenLimits, error) {
	if err := f.Validate(); err != nil {
		return f, err
	}
	doc, err := json.Marshal(f.Limits)
	if err != nil {
		return f, fmt.Errorf("limits of %s: %w", f.Key, err)
	}
	rules := make([]string, len(f.Rules))
	for i, r := range f.Rules {
		rules[i] = string(r)
	}
	k := f.Key
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var latest int
		if err := tx.QueryRow(ctx, `
			SELECT coalesce(max(version), 0) FROM spc_limits
			WHERE kind = $1 AND station = $2 AND name = $3 AND model = $4 AND variant = $5`,
			k.Kind, k.Station, k.Name, k.Model, k.Variant).Scan(&latest); err != nil {
			return err
		}
		if latest != replaces {
			return fmt.Errorf("%w: version %d is the newest, not %d", ErrLimitsChanged, latest, replaces)
		}
		f.Version = latest + 1
		return tx.QueryRow(ctx, `
			INSERT INTO spc_limits (kind, station, name, model, variant, version, method, subgroup, limits, rules,
			                        baseline_from, baseline_to, frozen_by, signed_in, frozen_at, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			RETURNING limits_id`,
			k.Kind, k.Station, k.Name, k.Model, k.Variant, f.Version, string(f.Limits.Chart.Method), f.Limits.Chart.N, doc, rules,
			f.BaselineFrom, f.BaselineTo, f.FrozenBy, f.SignedIn, f.FrozenAt, f.Reason).Scan(&f.ID)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: a concurrent freeze won
		err = fmt.Errorf("%w: another version was frozen at the same moment", ErrLimitsChanged)
	}
	if err != nil {
		return f, fmt.Errorf("freeze limits of %s: %w", k, err)
	}
	return f, nil
}

const limitsColumns = `limits_id, kind, station, name, model, variant, version, limits, rules,
	baseline_from, baseline_to, frozen_by, signed_in, frozen_at, reason`

func scanLimits(rows pgx.Rows) ([]FrozenLimits, error) {
	out := []FrozenLimits{}
	var f FrozenLimits
	var doc []byte
	var rules []string
	_, err := pgx.ForEachRow(rows, []any{&f.ID, &f.Key.Kind, &f.Key.Station, &f.Key.Name, &f.Key.Model, &f.Key.Variant, &f.Version, &doc, &rules,
		&f.BaselineFrom, &f.BaselineTo, &f.FrozenBy, &f.SignedIn, &f.FrozenAt, &f.Reason}, func() error {
		f.Limits = spc.Limits{}
		if err := json.Unmarshal(doc, &f.Limits); err != nil {
			return fmt.Errorf("limits %d of %s: %w", f.ID, f.Key, err)
		}
		f.Rules = make([]spc.Rule, len(rules))
		for i, r := range rules {
			f.Rules[i] = spc.Rule(r)
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// LatestLimits returns the newest version of key's limits, or an error
// wrapping ErrNotFound when none was frozen.
func (s *Store) LatestLimits(ctx context.Context, key CharKey) (FrozenLimits, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+limitsColumns+` FROM spc_limits
		WHERE kind = $1 AND station = $2 AND name = $3 AND model = $4 AND variant = $5
		ORDER BY version DESC LIMIT 1`, key.Kind, key.Station, key.Name, key.Model, key.Variant)
	if err != nil {
		return FrozenLimits{}, fmt.Errorf("limits of %s: %w", key, err)
	}
	fs, err := scanLimits(rows)
	if err != nil {
		return FrozenLimits{}, fmt.Errorf("limits of %s: %w", key, err)
	}
	if len(fs) == 0 {
		return FrozenLimits{}, fmt.Errorf("limits of %s: %w", key, ErrNotFound)
	}
	return fs[0], nil
}

// LimitsHistory returns every version of key's limits, newest first.
func (s *Store) LimitsHistory(ctx context.Context, key CharKey) ([]FrozenLimits, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+limitsColumns+` FROM spc_limits
		WHERE kind = $1 AND station = $2 AND name = $3 AND model = $4 AND variant = $5
		ORDER BY version DESC`, key.Kind, key.Station, key.Name, key.Model, key.Variant)
	if err != nil {
		return nil, fmt.Errorf("limits history of %s: %w", key, err)
	}
	fs, err := scanLimits(rows)
	if err != nil {
		return nil, fmt.Errorf("limits history of %s: %w", key, err)
	}
	return fs, nil
}

// AllLatestLimits returns the newest limits of every characteristic that
// has any, by key.
func (s *Store) AllLatestLimits(ctx context.Context) (map[CharKey]FrozenLimits, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (kind, station, name, model, variant) `+limitsColumns+`
		FROM spc_limits ORDER BY kind, station, name, model, variant, version DESC`)
	if err != nil {
		return nil, fmt.Errorf("latest limits: %w", err)
	}
	fs, err := scanLimits(rows)
	if err != nil {
		return nil, fmt.Errorf("latest limits: %w", err)
	}
	out := make(map[CharKey]FrozenLimits, len(fs))
	for _, f := range fs {
		out[f.Key] = f
	}
	return out, nil
}
