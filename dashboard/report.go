package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
)

// The end-of-shift report: the shift's numbers (cars, JPH, FPY, OEE with
// A, P and Q, the downtime Pareto), its top defects, the holds opened and
// closed in it and its SPC alarms, as a printable page (GET
// /report/shift), a PDF (GET /report/shift.pdf) and text (keiline report
// shift).

// Report is one shift's report.
type Report struct {
	Plant, Line string
	Shift       ShiftView
	Quality     *schema.ShiftQuality
	Alarms      []Alarm
	AlarmsTotal int
	PrintedAt   time.Time
	// Names are the stations' names by id.
	Names map[string]string
}

// ShiftReport computes the report of the shift that holds at, as of now
// (or of its end, when it is over), from cfg's record. cfg is checked as
// Start checks it; Addr is not used.
func ShiftReport(ctx context.Context, cfg Config, at time.Time) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return shiftReport(ctx, &cfg, at)
}

func shiftReport(ctx context.Context, c *Config, at time.Time) (*Report, error) {
	now := c.Now()
	from, to := shiftWindow(c.ShiftStart, time.Duration(float64(c.ShiftLength)/c.Speed), at)
	asOf := now
	if asOf.After(to) {
		asOf = to
	}
	asOf = asOf.Truncate(time.Millisecond)
	if !asOf.After(from) {
		return nil, badRequest("the shift from %s has not begun", when(from))
	}
	ids := make([]string, len(c.Stations))
	names := map[string]string{}
	for i, s := range c.Stations {
		ids[i] = s.ID
		names[s.ID] = s.Name
	}
	rec, err := c.Store.ShiftRecord(ctx, schema.ShiftQuery{From: from, To: asOf, Stations: ids, Out: ids[len(ids)-1]})
	if err != nil {
		return nil, err
	}
	r := &Report{Plant: c.Plant, Line: c.Line, Shift: shiftNumbers(c.shiftParams(from, to, asOf), rec), PrintedAt: now, Names: names}
	if r.Quality, err = c.Store.ShiftQuality(ctx, from, asOf, ids, schema.TopDefectsDefault); err != nil {
		return nil, err
	}
	if r.Alarms, r.AlarmsTotal, err = BuildAlarms(ctx, c.Store, from, asOf); err != nil {
		return nil, err
	}
	return r, nil
}

// reportAt reads the shift a request asks for: at=TIME (the shift that
// holds it), else the current shift; previous=1 steps one shift back.
func (s *Server) reportAt(r *http.Request) (time.Time, error) {
	at := s.cfg.Now()
	q := r.URL.Query()
	if v := q.Get("at"); v != "" {
		t, err := traceweb.ParseTime(v)
		if err != nil {
			return at, badRequest("at: %v", err)
		}
		at = t
	}
	if q.Get("previous") == "1" {
		at = at.Add(-time.Duration(float64(s.cfg.ShiftLength) / s.cfg.Speed))
	}
	return at, nil
}

func (s *Server) shiftReportPage(r *http.Request, lang string) (string, map[string]any, error) {
	at, err := s.reportAt(r)
	if err != nil {
		return "", nil, err
	}
	rep, err := shiftReport(r.Context(), &s.cfg, at)
	if err != nil {
		return "", nil, err
	}
	q := r.URL.Query()
	q.Del("lang")
	q.Set("lang", lang)
	return "shift_report.html", reportData(rep, lang, "/report/shift.pdf?"+q.Encode()), nil
}

func reportData(rep *Report, lang, pdf string) map[string]any {
	return map[string]any{"Title": pageTexts[lang]["shift_report"] + " " + rep.Plant + " " + rep.Line, "R": rep, "PDF": pdf,
		"Pareto": paretoSVG(rep.Shift.Downtime)}
}

// RenderReport writes rep as the standalone printable HTML page in lang
// (en or ja): what the dashboard serves and prints to PDF.
func RenderReport(w io.Writer, rep *Report, lang string) error {
	if supported(lang) == "" {
		return fmt.Errorf("report language %q: want en or ja", lang)
	}
	var buf bytes.Buffer
	data := reportData(rep, lang, "")
	data["Lang"] = lang
	if err := pages[lang].ExecuteTemplate(&buf, "shift_report.html", data); err != nil {
		return fmt.Errorf("render the shift report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// pdfSlots serialises PDF printing: one headless browser at a time.
var pdfSlots = make(chan struct{}, 1)

func (s *Server) shiftReportPDF(w http.ResponseWriter, r *http.Request) error {
	lang := langOf(w, r)
	at, err := s.reportAt(r)
	if err != nil {
		return err
	}
	rep, err := shiftReport(r.Context(), &s.cfg, at)
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	if err := RenderReport(&doc, rep, lang); err != nil {
		return err
	}
	select {
	case pdfSlots <- struct{}{}:
		defer func() { <-pdfSlots }()
	case <-r.Context().Done():
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), PDFTimeout)
	defer cancel()
	pdf, err := PrintPDF(ctx, s.cfg.Chromium, doc.Bytes())
	if err != nil {
		return &httpError{http.StatusServiceUnavailable, err.Error()}
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="shift-%s-%s-%s.pdf"`, rep.Plant, rep.Line, rep.Shift.From.Format("20060102-1504")))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(pdf)
	return nil
}

// WriteReportText writes rep as text for a terminal, in lang.
func WriteReportText(out io.Writer, rep *Report, lang string) error {
	tx := pageTexts[supported(lang)]
	if tx == nil {
		tx = pageTexts["en"]
	}
	v := rep.Shift
	fmt.Fprintf(out, "%s %s %s — %s %s … %s (%s %s)\n\n", tx["shift_report"], rep.Plant, rep.Line, tx["shift"], when(v.From), when(v.To), tx["as_of"], when(v.AsOf))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%d\t%s %d, %s %d\n", tx["cars_out"], v.CarsOut, tx["plan_to_date"], v.PlanToDate, tx["plan"], v.Plan)
	fmt.Fprintf(tw, "%s\t%s\t%s %s\n", tx["jph"], fnum(1, v.JPH), tx["target_jph"], fnum(1, v.TargetJPH))
	fmt.Fprintf(tw, "%s\t%s\t%d / %d\n", tx["fpy"], pct(v.FPY), v.FirstPass, v.CarsOut)
	l := v.Line
	fmt.Fprintf(tw, "%s\t%s\tA %s × P %s × Q %s\n", tx["oee"], pct(l.OEE), pct(l.A), pct(l.P), pct(l.Q))
	fmt.Fprintf(tw, "%s\t%s\t%s %s, %s %s, %s %s\n", tx["planned_time"], dur(l.PlannedS), tx["down_time"], dur(l.DownS), tx["run_time"], dur(l.RunS), tx["ideal_cycle"], fnum(1, l.IdealCycleS)+" s")
	fmt.Fprintf(tw, "%s\t%s\t%s %s\n", tx["planned_from"], when(v.PlannedFrom), tx["unplanned"], dur(v.UnplannedS))
	_ = tw.Flush()

	section := func(title string) { fmt.Fprintf(out, "\n%s\n%s\n", title, strings.Repeat("-", len([]rune(title)))) }
	section(tx["station_oee"])
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t%s\tA\tP\tQ\t%s\t\n", tx["station"], tx["oee"], tx["count"])
	for _, st := range v.Stations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", st.Station, pct(st.OEE.OEE), pct(st.A), pct(st.P), pct(st.Q), st.Count)
	}
	_ = tw.Flush()
	section(tx["downtime"])
	if len(v.Downtime) == 0 {
		fmt.Fprintln(out, tx["none"])
	}
	for _, d := range v.Downtime {
		fmt.Fprintf(out, "%-4s %-11s %4d %-28s %s  %d× %s\n", d.Station, d.State, d.FaultCode, d.FaultText, dur(d.Seconds), d.Stops, pct(d.Cumulative))
	}
	section(tx["top_defects"])
	if len(rep.Quality.Defects) == 0 {
		fmt.Fprintln(out, tx["none"])
	}
	for _, d := range rep.Quality.Defects {
		fmt.Fprintf(out, "%-4s %-16s %-24s %5d  (%d %s)\n", d.Station, tx["defect_"+d.Kind], d.Name, d.Count, d.Cars, tx["cars"])
	}
	section(tx["holds_opened"] + " / " + tx["holds_closed"])
	fmt.Fprintf(out, "%s %d, %s %d, %d %s\n", tx["opened"], rep.Quality.OpenedCount, tx["closed"], rep.Quality.ClosedCount, v.OpenHolds, tx["open_holds"])
	section(tx["spc_alarms"])
	if len(rep.Alarms) == 0 {
		fmt.Fprintln(out, tx["none"])
	}
	for _, a := range rep.Alarms {
		fmt.Fprintf(out, "%s  %-32s %-12s %s\n", when(a.At), a.Key.String(), RuleName(a.Rule, lang), a.VIN)
	}
	if rep.AlarmsTotal > len(rep.Alarms) {
		fmt.Fprintf(out, "%d %s\n", rep.AlarmsTotal-len(rep.Alarms), tx["more"])
	}
	return nil
}

// paretoSVG draws the downtime Pareto's bars: a small SVG with its
// colours in attributes (the pages' style sheet has the rest).
func paretoSVG(items []DowntimeItem) []byte {
	if len(items) == 0 {
		return nil
	}
	const w, rowH, labelW = 640, 20, 210
	top := items[0].Seconds
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="pareto" width="%d" height="%d" viewBox="0 0 %d %d" role="img" font-family="sans-serif" font-size="11">`,
		w, rowH*len(items)+4, w, rowH*len(items)+4)
	for i, d := range items {
		y := i*rowH + 2
		bw := 0.0
		if top > 0 {
			bw = (w - labelW - 90) * d.Seconds / top
		}
		label := d.Station + " " + d.State
		if d.FaultText != "" {
			label += " " + d.FaultText
		}
		fmt.Fprintf(&b, `<text x="0" y="%d" fill="#333">%s</text>`, y+13, esc(truncate(label, 34)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="#c33"/>`, labelW, y+2, bw, rowH-6)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`, float64(labelW)+bw+6, y+13, esc(dur(d.Seconds)))
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func esc(s string) string { return html.EscapeString(s) }
