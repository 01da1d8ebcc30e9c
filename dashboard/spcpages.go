package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
	"github.com/keiline/keiline/traceweb"
	"github.com/keiline/keiline/web"
)

// The quality engineer's SPC pages:
//
//	GET  /spc/                 every characteristic with its state
//	GET  /spc/chart?kind=&station=&name=[&model=&variant=][&from=&to=|&last=][&points=]
//	                           the chart, its flagged points and the freeze form
//	GET  /spc/chart.svg?…      the chart alone
//	POST /spc/freeze           freeze limits from a baseline window (a form)
//	GET  /spc/capability?…     the printable capability report
//	GET  /api/v1/spc           the index as JSON
//
// Reading needs only the dashboard's read-only store; freezing needs
// Config.SPCWriter (the web role). GET never changes anything.

// FreezeFormMax bounds the freeze form's body.
const FreezeFormMax = 64 << 10

var pages = func() pageSet {
	ps, err := newPageSet()
	if err != nil {
		panic(err) // the templates are embedded: every test would fail
	}
	return ps
}()

func (s *Server) spcRoutes(mux *http.ServeMux) {
	mux.Handle("GET /spc/{$}", s.page(pages, s.spcIndex))
	mux.Handle("GET /spc/chart", s.page(pages, s.spcChart))
	mux.Handle("GET /spc/chart.svg", s.handle(s.spcChartSVG))
	mux.Handle("POST /spc/freeze", s.page(pages, s.spcFreeze))
	mux.Handle("GET /spc/capability", s.page(pages, s.spcCapability))
	mux.Handle("GET /api/v1/spc", s.handle(s.apiSPC))
	mux.Handle("GET /report/shift", s.page(pages, s.shiftReportPage))
	mux.Handle("GET /report/shift.pdf", s.handle(s.shiftReportPDF))
}

func (s *Server) spcIndex(r *http.Request, lang string) (string, map[string]any, error) {
	from, to, err := windowFrom(r.URL.Query(), s.cfg.Now(), SPCIndexWindowDefault)
	if err != nil {
		return "", nil, err
	}
	rows, err := BuildIndex(r.Context(), s.cfg.Store, from, to)
	if err != nil {
		return "", nil, err
	}
	return "spc_index.html", map[string]any{"Title": pageTexts[lang]["spc_title"], "Rows": rows, "From": from, "To": to}, nil
}

func (s *Server) apiSPC(w http.ResponseWriter, r *http.Request) error {
	from, to, err := windowFrom(r.URL.Query(), s.cfg.Now(), SPCIndexWindowDefault)
	if err != nil {
		return err
	}
	rows, err := BuildIndex(r.Context(), s.cfg.Store, from, to)
	if err != nil {
		return err
	}
	type row struct {
		schema.Characteristic
		State     string     `json:"state"`
		Version   int        `json:"limits_version,omitempty"`
		Broken    []spc.Rule `json:"broken,omitempty"`
		BrokenAt  *time.Time `json:"broken_at,omitempty"`
		BrokenVIN string     `json:"broken_vin,omitempty"`
	}
	out := struct {
		From            time.Time `json:"from"`
		To              time.Time `json:"to"`
		Characteristics []row     `json:"characteristics"`
	}{From: from, To: to, Characteristics: []row{}}
	for _, x := range rows {
		o := row{Characteristic: x.Characteristic, State: x.State(), Broken: x.Broken, BrokenVIN: x.BrokenVIN, BrokenAt: timePtr(x.BrokenAt)}
		if x.Frozen != nil {
			o.Version = x.Frozen.Version
		}
		out.Characteristics = append(out.Characteristics, o)
	}
	return writeJSON(w, http.StatusOK, out)
}

// chartRequest reads a chart's key, window and size from r.
func (s *Server) chartRequest(r *http.Request, lang string) (ChartRequest, error) {
	q := r.URL.Query()
	k, err := keyFrom(q)
	if err != nil {
		return ChartRequest{}, err
	}
	from, to, err := windowFrom(q, s.cfg.Now(), SPCChartWindowDefault)
	if err != nil {
		return ChartRequest{}, err
	}
	req := ChartRequest{Key: k, From: from, To: to, Lang: lang, TraceBase: traceweb.BaseDefault}
	if p := q.Get("points"); p != "" {
		if req.Points, err = strconv.Atoi(p); err != nil || req.Points < 1 || req.Points > SPCChartPointsMax {
			return req, badRequest("points: want 1 to %d", SPCChartPointsMax)
		}
	}
	return req, nil
}

func (s *Server) spcChart(r *http.Request, lang string) (string, map[string]any, error) {
	req, err := s.chartRequest(r, lang)
	if err != nil {
		return "", nil, err
	}
	v, err := BuildChart(r.Context(), s.cfg.Store, s.cfg.SPC, req)
	if err != nil {
		return "", nil, err
	}
	hist, err := s.cfg.Store.LimitsHistory(r.Context(), req.Key)
	if err != nil {
		return "", nil, err
	}
	d := map[string]any{"Title": req.Key.String(), "V": v, "Req": req, "History": hist, "Flags": v.Flags(),
		"CanFreeze": s.cfg.SPCWriter != nil, "CSRF": web.CSRFToken(r), "Methods": []spc.Method{spc.MethodIMR, spc.MethodXbarR, spc.MethodXbarS},
		"Chart": v.Settings.ChartConfig(), "Replaces": 0, "FewSubgroups": false}
	if v.Frozen != nil {
		d["Replaces"] = v.Frozen.Version
		d["Chart"] = v.Frozen.Limits.Chart
		d["FewSubgroups"] = v.Frozen.Limits.Baseline.Subgroups < spc.RecommendedSubgroups
	}
	if id := web.IdentityFrom(r.Context()); id != nil && id.Kind == web.KindUser {
		d["User"] = id.User
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("frozen")); err == nil && n > 0 {
		d["Saved"] = n
	}
	return "spc_chart.html", d, nil
}

func (s *Server) spcChartSVG(w http.ResponseWriter, r *http.Request) error {
	req, err := s.chartRequest(r, langOf(w, r))
	if err != nil {
		return err
	}
	v, err := BuildChart(r.Context(), s.cfg.Store, s.cfg.SPC, req)
	switch {
	case errors.Is(err, schema.ErrBadCharacteristic):
		return badRequest("%v", err)
	case err != nil:
		return err
	case v.SVG == nil:
		return notFound("no chart of " + req.Key.String() + ": " + v.Problem)
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Content-Security-Policy", pagesCSP)
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(v.SVG)
	return nil
}

// spcFreeze freezes a characteristic's limits from the baseline window
// the form gives, and sends the engineer back to the chart. The page says
// "saved" only after the commit.
func (s *Server) spcFreeze(r *http.Request, lang string) (string, map[string]any, error) {
	if s.cfg.SPCWriter == nil {
		return "", nil, &httpError{http.StatusForbidden, "this dashboard is read-only: limits are frozen on a dashboard given the web role's database connection"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, FreezeFormMax)
	if err := r.ParseForm(); err != nil {
		return "", nil, badRequest("the form could not be read")
	}
	f := r.PostForm
	k, err := keyFrom(f)
	if err != nil {
		return "", nil, err
	}
	from, err := traceweb.ParseTime(f.Get("baseline_from"))
	if err != nil {
		return "", nil, badRequest("baseline from: %v", err)
	}
	to, err := traceweb.ParseTime(f.Get("baseline_to"))
	if err != nil {
		return "", nil, badRequest("baseline to: %v", err)
	}
	if !from.Before(to) {
		return "", nil, badRequest("the baseline window must end after it starts")
	}
	n, err := strconv.Atoi(f.Get("subgroup"))
	if err != nil {
		return "", nil, badRequest("subgroup size: want a number from %d to %d", spc.SubgroupMin, spc.SubgroupMax)
	}
	cfg := spc.ChartConfig{Method: spc.Method(f.Get("method")), N: n}
	if err := cfg.Validate(); err != nil {
		return "", nil, badRequest("%v", err)
	}
	replaces, err := strconv.Atoi(f.Get("replaces"))
	if err != nil || replaces < 0 {
		return "", nil, badRequest("replaces: the version the form was shown with")
	}
	who, signedIn := strings.TrimSpace(f.Get("frozen_by")), false
	if id := web.IdentityFrom(r.Context()); id != nil && id.Kind == web.KindUser {
		who, signedIn = id.User, true
	}
	if who == "" {
		return "", nil, badRequest("your name: say who freezes the limits")
	}
	base, err := s.cfg.Store.Series(r.Context(), schema.SeriesQuery{Key: k, From: from, To: to})
	if err != nil {
		return "", nil, err
	}
	limits, err := spc.ComputeLimits(base.Points, cfg)
	if err != nil {
		return "", nil, badRequest("limits of %s from %s to %s (%d values): %v", k, when(from), when(to), len(base.Points), err)
	}
	fl, err := s.cfg.SPCWriter.FreezeLimits(r.Context(), schema.FrozenLimits{Key: k, Limits: limits,
		Rules: s.cfg.SPC.For(k.Kind, k.Station, k.Name, k.Model, k.Variant).RuleSet(), BaselineFrom: from, BaselineTo: to,
		FrozenBy: who, SignedIn: signedIn, FrozenAt: s.cfg.Now(), Reason: strings.TrimSpace(f.Get("reason"))}, replaces)
	switch {
	case errors.Is(err, schema.ErrLimitsChanged):
		return "", nil, &httpError{http.StatusConflict, err.Error() + ": reload the chart and decide again"}
	case errors.Is(err, schema.ErrBadCharacteristic):
		return "", nil, badRequest("%v", err)
	case err != nil:
		return "", nil, err
	}
	s.log.Info("spc limits frozen", "characteristic", k.String(), "version", fl.Version, "who", who, "signed_in", signedIn)
	q := keyQuery(k)
	q.Set("frozen", strconv.Itoa(fl.Version))
	return "", nil, &redirect{"/spc/chart?" + q.Encode()}
}

// redirect is a page's answer that sends the browser elsewhere (303).
type redirect struct{ to string }

func (r *redirect) Error() string { return "see " + r.to }

func (s *Server) spcCapability(r *http.Request, lang string) (string, map[string]any, error) {
	q := r.URL.Query()
	k, err := keyFrom(q)
	if err != nil {
		return "", nil, err
	}
	from, to, err := windowFrom(q, s.cfg.Now(), SPCChartWindowDefault)
	if err != nil {
		return "", nil, err
	}
	v, err := BuildCapability(r.Context(), s.cfg.Store, s.cfg.SPC, k, from, to)
	if err != nil {
		return "", nil, err
	}
	return "spc_capability.html", map[string]any{"Title": pageTexts[lang]["capability"] + " — " + k.String(), "V": v,
		"PrintedAt": s.cfg.Now(), "Plant": s.cfg.Plant + " " + s.cfg.Line, "Query": queryWithoutLang(r.URL.Query())}, nil
}

// queryWithoutLang is q without its language, for links between pages.
func queryWithoutLang(q url.Values) string {
	q.Del("lang")
	return q.Encode()
}
