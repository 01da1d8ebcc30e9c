package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// The quality engineer's SPC views, computed from the record and the
// line config: the list of characteristics with their state, one
// characteristic's chart and its capability. The pages, `keiline spc` and
// the shift report use them alike.

// Defaults and limits of the SPC views.
const (
	// SPCIndexWindowDefault is how far back the index looks for
	// characteristics.
	SPCIndexWindowDefault = 7 * 24 * time.Hour
	// SPCChartWindowDefault is a chart's window when none is given.
	SPCChartWindowDefault = 30 * 24 * time.Hour
	// SPCChartPointsDefault is how many of the newest plotted points a
	// chart draws; SPCChartPointsMax bounds what may be asked.
	SPCChartPointsDefault = 125
	SPCChartPointsMax     = 2000
	// SPCStateValues is how many of a characteristic's newest values the
	// index checks against its frozen limits; a rule broken among the
	// newest SPCStateRecent plotted points is its state.
	SPCStateValues = 250
	SPCStateRecent = 25
	// SPCAlarmLeadIn is how much history before a shift the report's
	// alarms are checked with, so a run that began before the shift is
	// seen whole.
	SPCAlarmLeadIn = 24 * time.Hour
)

// ChartRequest asks for one characteristic's chart.
type ChartRequest struct {
	Key schema.CharKey
	// From and To bound the window checked (every point in it).
	From, To time.Time
	// Points is how many of the newest plotted points are drawn.
	// Defaults to SPCChartPointsDefault.
	Points int
	// Lang is the language of the drawing's labels (en or ja).
	Lang string
	// TraceBase is where a point's car links to (TraceBase + "/vin/" +
	// VIN); "" draws no links.
	TraceBase string
}

// ChartView is a characteristic's chart and what it stands on.
type ChartView struct {
	Key      schema.CharKey
	Settings line.SPCCharacteristic
	// Series is every known value of the window; Unknown among them.
	Series *schema.Series
	// Frozen is the newest frozen version of the limits, nil when none
	// is; the chart then uses Trial limits computed from the window.
	Frozen *schema.FrozenLimits
	Trial  bool
	Limits spc.Limits
	// Chart is the whole window checked; Drawn its newest points.
	Chart spc.Chart
	Drawn spc.Chart
	// Spec is what is drawn and used for capability: the line config's,
	// else the record's; SpecFrom says which ("config", "record", "").
	Spec     spc.Spec
	SpecFrom string
	SVG      []byte
	// Problem says why there is no chart (not enough data, no
	// variation); the rest is then partial.
	Problem string
}

// ruleLabels are the rules' names in the Japanese drawing.
func ruleLabels(lang string) map[spc.Rule]string {
	if lang != "ja" {
		return nil
	}
	out := map[spc.Rule]string{}
	for i, r := range spc.NelsonRules {
		out[r] = fmt.Sprintf("ネルソン則%d", i+1)
	}
	for i, r := range spc.WesternElectricRules {
		out[r] = fmt.Sprintf("WE則%d", i+1)
	}
	return out
}

// RuleName is a rule's name for people in lang.
func RuleName(r spc.Rule, lang string) string {
	if n := ruleLabels(lang)[r]; n != "" {
		return n
	}
	return r.String()
}

// specOf returns the characteristic's spec: each limit from the line
// config, else from the record (a test's low and high).
func specOf(set line.SPCCharacteristic, rec schema.RecordSpec) (spc.Spec, string) {
	var s spc.Spec
	from := ""
	bound := func(cfg, record *float64) spc.Bound {
		switch {
		case cfg != nil:
			from = "config"
			return spc.At(*cfg)
		case record != nil && !rec.Vary:
			if from == "" {
				from = "record"
			}
			return spc.At(*record)
		}
		return spc.Bound{}
	}
	s.LSL = bound(set.LSL, rec.Low)
	s.USL = bound(set.USL, rec.High)
	if set.Target != nil {
		s.Target = spc.At(*set.Target)
	}
	if s.Validate() != nil {
		return spc.Spec{}, ""
	}
	return s, from
}

// BuildChart reads req's series and the characteristic's newest frozen
// limits, checks every point of the window and draws the newest. A
// window too short to chart is not an error: ChartView.Problem says why.
// Errors: a bad key or window (schema.ErrBadCharacteristic), the record.
func BuildChart(ctx context.Context, store *schema.Store, settings *line.SPC, req ChartRequest) (*ChartView, error) {
	if req.Points <= 0 {
		req.Points = SPCChartPointsDefault
	}
	req.Points = min(req.Points, SPCChartPointsMax)
	k := req.Key
	v := &ChartView{Key: k, Settings: settings.For(k.Kind, k.Station, k.Name, k.Model, k.Variant)}
	var err error
	if v.Series, err = store.Series(ctx, schema.SeriesQuery{Key: k, From: req.From, To: req.To}); err != nil {
		return nil, err
	}
	switch f, err := store.LatestLimits(ctx, k); {
	case err == nil:
		v.Frozen = &f
		v.Limits = f.Limits
	case errors.Is(err, schema.ErrNotFound):
		v.Trial = true
	default:
		return nil, err
	}
	v.Spec, v.SpecFrom = specOf(v.Settings, v.Series.Spec)
	rules := v.Settings.RuleSet()
	if v.Frozen != nil {
		rules = v.Frozen.Rules
	} else if v.Limits, err = spc.ComputeLimits(v.Series.Points, v.Settings.ChartConfig()); err != nil {
		v.Problem = err.Error()
		return v, nil
	}
	if v.Chart, err = spc.Check(v.Limits, v.Series.Points, rules); err != nil {
		v.Problem = err.Error()
		return v, nil
	}
	v.Drawn = v.Chart.Tail(req.Points)
	opt := spc.SVGOptions{Spec: v.Spec, Labels: chartLabels(req.Lang, v.Limits.Chart.Method, k)}
	if req.TraceBase != "" {
		opt.PointHref = func(p spc.Plotted) string { return req.TraceBase + "/vin/" + p.ID }
	}
	if v.SVG, err = spc.RenderSVG(v.Drawn, opt); err != nil {
		v.Problem = err.Error()
	}
	return v, nil
}

// chartLabels are the drawing's texts in lang.
func chartLabels(lang string, m spc.Method, k schema.CharKey) spc.Labels {
	l := spc.Labels{Title: k.String(), Rules: ruleLabels(lang)}
	if lang != "ja" {
		return l
	}
	tx := pageTexts["ja"]
	l.CL, l.UCL, l.LCL, l.USL, l.LSL, l.Target = tx["cl"], tx["ucl"], tx["lcl"], tx["usl"], tx["lsl"], tx["target"]
	l.TimeFormat = "01/02 15:04"
	switch m {
	case spc.MethodIMR:
		l.Location, l.Dispersion = tx["loc_imr"], tx["disp_imr"]
	case spc.MethodXbarR:
		l.Location, l.Dispersion = tx["loc_xbar"], tx["disp_r"]
	default:
		l.Location, l.Dispersion = tx["loc_xbar"], tx["disp_s"]
	}
	return l
}

// Flag is one flagged point of a drawn chart, for the table under it.
type Flag struct {
	Index   int
	Rules   []spc.Rule
	Point   spc.Plotted
	EventID string
}

// Flags lists the drawn chart's flagged points, newest first.
func (v *ChartView) Flags() []Flag {
	var out []Flag
	offset := len(v.Chart.Points) - len(v.Drawn.Points)
	for i, p := range v.Drawn.Points {
		vs := v.Drawn.Flagged(i)
		if len(vs) == 0 {
			continue
		}
		f := Flag{Index: offset + i, Point: p}
		for _, x := range vs {
			if !slices.Contains(f.Rules, x.Rule) {
				f.Rules = append(f.Rules, x.Rule)
			}
		}
		if p.Last < len(v.Series.EventIDs) {
			f.EventID = v.Series.EventIDs[p.Last]
		}
		out = append(out, f)
	}
	slices.Reverse(out)
	return out
}

// CapabilityView is a characteristic's capability study over a window.
type CapabilityView struct {
	Key      schema.CharKey
	Settings line.SPCCharacteristic
	From, To time.Time
	Spec     spc.Spec
	SpecFrom string
	Unknown  int
	Report   spc.CapabilityReport
	// Problem says why there is no study (no spec, too few values).
	Problem string
}

// BuildCapability computes key's capability over [from, to), with the
// chart config of its frozen limits (else its settings') for the
// within-subgroup sigma.
func BuildCapability(ctx context.Context, store *schema.Store, settings *line.SPC, key schema.CharKey, from, to time.Time) (*CapabilityView, error) {
	v := &CapabilityView{Key: key, From: from, To: to, Settings: settings.For(key.Kind, key.Station, key.Name, key.Model, key.Variant)}
	s, err := store.Series(ctx, schema.SeriesQuery{Key: key, From: from, To: to})
	if err != nil {
		return nil, err
	}
	v.Unknown = s.Unknown
	cfg := v.Settings.ChartConfig()
	switch f, err := store.LatestLimits(ctx, key); {
	case err == nil:
		cfg = f.Limits.Chart
	case !errors.Is(err, schema.ErrNotFound):
		return nil, err
	}
	v.Spec, v.SpecFrom = specOf(v.Settings, s.Spec)
	if !v.Spec.LSL.Set && !v.Spec.USL.Set {
		v.Problem = "no specification limits: give lsl and usl for this characteristic in the line config's spc section"
		return v, nil
	}
	if v.Report, err = spc.Capability(s.Points, v.Spec, spc.CapabilityOptions{Chart: cfg}); err != nil {
		v.Problem = err.Error()
	}
	return v, nil
}

// IndexRow is one characteristic of the SPC index with its state.
type IndexRow struct {
	schema.Characteristic
	Frozen *schema.FrozenLimits
	// Broken are the rules broken among the newest plotted points (empty:
	// in control); BrokenAt and BrokenVIN the newest such point.
	Broken    []spc.Rule
	BrokenAt  time.Time
	BrokenVIN string
	// Problem says why the state is unknown.
	Problem string
}

// State is "in_control", "rule_broken", "no_limits" or "not_enough".
func (r IndexRow) State() string {
	switch {
	case r.Frozen == nil:
		return "no_limits"
	case r.Problem != "":
		return "not_enough"
	case len(r.Broken) > 0:
		return "rule_broken"
	}
	return "in_control"
}

// BuildIndex lists the characteristics with values in [from, to), and
// those with frozen limits, each with its state against its limits.
func BuildIndex(ctx context.Context, store *schema.Store, from, to time.Time) ([]IndexRow, error) {
	chars, err := store.Characteristics(ctx, schema.CharacteristicQuery{From: from, To: to})
	if err != nil {
		return nil, err
	}
	frozen, err := store.AllLatestLimits(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[schema.CharKey]bool{}
	var rows []IndexRow
	for _, c := range chars {
		seen[c.CharKey] = true
		rows = append(rows, IndexRow{Characteristic: c})
	}
	for k := range frozen {
		if !seen[k] {
			rows = append(rows, IndexRow{Characteristic: schema.Characteristic{CharKey: k}})
		}
	}
	slices.SortStableFunc(rows, func(a, b IndexRow) int {
		return strings.Compare(a.Station+"\x00"+a.Name+"\x00"+a.Model+"\x00"+a.Variant, b.Station+"\x00"+b.Name+"\x00"+b.Model+"\x00"+b.Variant)
	})
	for i := range rows {
		f, ok := frozen[rows[i].CharKey]
		if !ok {
			continue
		}
		rows[i].Frozen = &f
		s, err := store.Series(ctx, schema.SeriesQuery{Key: f.Key, From: from, To: to, Last: SPCStateValues})
		if err != nil {
			return nil, err
		}
		c, err := spc.Check(f.Limits, s.Points, f.Rules)
		if err != nil {
			rows[i].Problem = err.Error()
			continue
		}
		recent := c.Tail(SPCStateRecent)
		for j, p := range recent.Points {
			for _, x := range recent.Flagged(j) {
				if !slices.Contains(rows[i].Broken, x.Rule) {
					rows[i].Broken = append(rows[i].Broken, x.Rule)
				}
				rows[i].BrokenAt, rows[i].BrokenVIN = p.Time, p.ID
			}
		}
	}
	return rows, nil
}

// Alarm is a rule broken at a point in a window.
type Alarm struct {
	Key  schema.CharKey
	Rule spc.Rule
	At   time.Time
	VIN  string
}

// AlarmsMax is the most alarms a report lists.
const AlarmsMax = 100

// BuildAlarms checks every characteristic with frozen limits over [from,
// to), with SPCAlarmLeadIn of history before from, and returns the rules
// broken at points in [from, to), oldest first, at most AlarmsMax, and
// how many there were in all.
func BuildAlarms(ctx context.Context, store *schema.Store, from, to time.Time) ([]Alarm, int, error) {
	frozen, err := store.AllLatestLimits(ctx)
	if err != nil {
		return nil, 0, err
	}
	var out []Alarm
	for _, f := range frozen {
		s, err := store.Series(ctx, schema.SeriesQuery{Key: f.Key, From: from.Add(-SPCAlarmLeadIn), To: to})
		if err != nil {
			return nil, 0, err
		}
		c, err := spc.Check(f.Limits, s.Points, f.Rules)
		if err != nil {
			continue // too few points to plot: nothing broken
		}
		type at struct {
			rule  spc.Rule
			index int
		}
		seen := map[at]bool{} // Nelson 1 may trip on both charts at a point
		for _, x := range c.Violations {
			p := c.Points[x.Index]
			if p.Time.Before(from) || seen[at{x.Rule, x.Index}] {
				continue
			}
			seen[at{x.Rule, x.Index}] = true
			out = append(out, Alarm{Key: f.Key, Rule: x.Rule, At: p.Time, VIN: p.ID})
		}
	}
	slices.SortStableFunc(out, func(a, b Alarm) int { return a.At.Compare(b.At) })
	n := len(out)
	if n > AlarmsMax {
		out = out[:AlarmsMax]
	}
	return out, n, nil
}
