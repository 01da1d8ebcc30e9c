// Package traceweb answers the quality auditor's trace questions over
// HTTP: JSON (or CSV) for machines under api/, HTML pages for people, and
// a printable birth certificate per VIN. It only reads the record; give it
// a store connected as the read-only auditor role
// (schema.OpenAs(ctx, url, schema.RoleAuditor)).
//
// Routes, relative to where the handler is mounted (Config.Base):
//
//	GET /                              search forms for every question
//	GET /vin/{vin}                     the birth record
//	GET /vin/{vin}/certificate         the printable birth certificate
//	GET /part?serial=S[&serial=…]      cars that got these part serials
//	GET /lot?lot=L[&part_number=P][&supplier=S]
//	GET /tool?tool=T&from=T1&to=T2[&result=NOK]
//	GET /station?station=S&from=T1&to=T2[&rows=joints|tests][&name=N][&result=NOK]
//	GET /tightenings?(tool=SERIAL|controller=C|station=S&pset=N)&from=T1&to=T2[&result=NOK]
//	GET /api/vin/{vin}, /api/part, /api/lot, /api/tool, /api/station, /api/tightenings
//	                                   the same answers as JSON, or CSV with format=csv
//
// Times in queries are RFC 3339 or dates (UTC); from/to may be replaced by
// last=8h or last=7d. Pages carry no scripts and load nothing from
// elsewhere; a content security policy says so.
package traceweb

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// BaseDefault is where the dashboard mounts the handler.
const BaseDefault = "/trace"

// Config configures the handler.
type Config struct {
	// Base is the path the handler is mounted at, for links between
	// pages. Defaults to BaseDefault. The mounter strips it
	// (http.StripPrefix) before the handler sees a request.
	Base string
	// Plant names the plant on the birth certificate. Optional.
	Plant string
	// Location is the time zone pages show times in. Defaults to UTC.
	Location *time.Location
	// Logger receives the causes of failed requests. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for windows given as last=…. Defaults to time.Now.
	Now func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

// Handler returns the trace pages and API over store.
func Handler(store *schema.Store, cfg Config) http.Handler {
	if cfg.Base == "" {
		cfg.Base = BaseDefault
	}
	cfg.Base = strings.TrimRight(cfg.Base, "/")
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &server{store: store, cfg: cfg}
	s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"base":  func() string { return cfg.Base },
		"when":  s.when,
		"whenp": func(t *time.Time) string { return s.when(*t) },
		"ok":    okText,
		"okclass": func(ok *bool) string {
			switch {
			case ok == nil:
				return "unknown"
			case *ok:
				return "okv"
			}
			return "nok"
		},
		"num": num,
		"fix": func(d int, v *float64) string {
			if v == nil {
				return "unknown"
			}
			return strconv.FormatFloat(*v, 'f', d, 64)
		},
		"short": func(h string) string { return h[:min(len(h), 16)] },
		"q":     url.QueryEscape,
		"path":  url.PathEscape,
	}).ParseFS(templateFS, "templates/*.html"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page(s.search))
	mux.HandleFunc("GET /vin", s.findVIN)
	mux.HandleFunc("GET /vin/{vin}", s.page(s.vinPage))
	mux.HandleFunc("GET /vin/{vin}/certificate", s.page(s.certificate))
	mux.HandleFunc("GET /part", s.page(s.partPage))
	mux.HandleFunc("GET /lot", s.page(s.lotPage))
	mux.HandleFunc("GET /tool", s.page(s.toolPage))
	mux.HandleFunc("GET /station", s.page(s.stationPage))
	mux.HandleFunc("GET /tightenings", s.page(s.tighteningPage))
	mux.HandleFunc("GET /api/vin/{vin}", s.api(s.vinAPI))
	mux.HandleFunc("GET /api/part", s.api(s.partAPI))
	mux.HandleFunc("GET /api/lot", s.api(s.lotAPI))
	mux.HandleFunc("GET /api/tool", s.api(s.toolAPI))
	mux.HandleFunc("GET /api/station", s.api(s.stationAPI))
	mux.HandleFunc("GET /api/tightenings", s.api(s.tighteningAPI))
	return mux
}

type server struct {
	store *schema.Store
	cfg   Config
	tmpl  *template.Template
}

// errBadRequest marks a request the client must change.
var errBadRequest = errors.New("bad request")

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// status maps an error to the HTTP status and the message the user sees;
// the cause of a server error goes only to the log.
func (s *server) status(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, schema.ErrNotFound):
		return http.StatusNotFound, "not found: " + err.Error()
	case errors.Is(err, errBadRequest), errors.Is(err, schema.ErrBadQuestion):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request cancelled"
	}
	s.cfg.Logger.Error("trace request failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
	return http.StatusInternalServerError, "internal error: the record could not be read (see the server log)"
}

// contentSecurityPolicy allows the pages no script, nothing from
// elsewhere, no framing, and only their own inline styles, by hash: so the
// pages may share an origin with the dashboard, which allows no inline
// style either.
var contentSecurityPolicy = "default-src 'none'; style-src " + styleHashes() +
	"; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// styleHashes returns the CSP sources of the templates' <style> blocks.
// It panics if a block is not static text (the page would not match its
// hash).
func styleHashes() string {
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	files, err := templateFS.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	var srcs []string
	for _, f := range files {
		b, err := templateFS.ReadFile("templates/" + f.Name())
		if err != nil {
			panic(err)
		}
		for _, m := range style.FindAllSubmatch(b, -1) {
			if strings.Contains(string(m[1]), "{{") {
				panic("traceweb: templates/" + f.Name() + ": a <style> block must be static text")
			}
			sum := sha256.Sum256(m[1])
			srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
	}
	return strings.Join(srcs, " ")
}

// securityHeaders: see contentSecurityPolicy.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// page renders what fn returns: the template name and its data.
func (s *server) page(fn func(*http.Request) (string, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		name, data, err := fn(r)
		if err != nil {
			code, msg := s.status(r, err)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(code)
			_ = s.tmpl.ExecuteTemplate(w, "error.html", map[string]any{"Code": code, "Message": msg})
			return
		}
		var b strings.Builder
		if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
			code, msg := s.status(r, fmt.Errorf("render %s: %w", name, err))
			http.Error(w, msg, code)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
	}
}

// api writes what fn returns as JSON, or as CSV with format=csv.
func (s *server) api(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		v, err := fn(r)
		if err != nil {
			code, msg := s.status(r, err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
			return
		}
		switch r.URL.Query().Get("format") {
		case "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="trace.csv"`)
			switch a := v.(type) {
			case schema.BirthRecord:
				err = WriteBirthCSV(w, a)
			case *schema.PartAnswer:
				err = WritePartsCSV(w, a)
			case *schema.WindowAnswer:
				err = WriteWindowCSV(w, a)
			}
		case "", "json":
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			err = enc.Encode(v)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "format: want json or csv"})
			return
		}
		if err != nil {
			s.cfg.Logger.Warn("trace response cut short", "path", r.URL.Path, "err", err)
		}
	}
}

func (s *server) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(s.cfg.Location)
	return t.Format("2006-01-02 15:04:05") + " " + t.Format("MST")
}

// The questions, read from requests.

func (s *server) birth(r *http.Request) (schema.BirthRecord, error) {
	v := r.PathValue("vin")
	if err := vin.Validate(v); err != nil {
		return schema.BirthRecord{}, badRequest("%v", err)
	}
	t, err := s.store.Trace(r.Context(), v)
	if err != nil {
		return schema.BirthRecord{}, err
	}
	return t.Birth(), nil
}

func (s *server) partQuestion(r *http.Request) (*schema.PartAnswer, []string, error) {
	serials := nonEmpty(r.URL.Query()["serial"])
	if len(serials) == 0 {
		return nil, nil, badRequest("give a part serial: serial=…")
	}
	a, err := s.store.ByPart(r.Context(), serials)
	return a, serials, err
}

func (s *server) lotQuestion(r *http.Request) (*schema.PartAnswer, schema.LotQuery, error) {
	q := r.URL.Query()
	lq := schema.LotQuery{Lots: nonEmpty(q["lot"]), PartNumber: q.Get("part_number"), Supplier: q.Get("supplier")}
	if len(lq.Lots) == 0 {
		return nil, lq, badRequest("give a lot: lot=…")
	}
	a, err := s.store.ByLot(r.Context(), lq)
	return a, lq, err
}

// window reads from, to and last.
func (s *server) window(q url.Values) (time.Time, time.Time, error) {
	to := s.cfg.Now()
	if v := q.Get("to"); v != "" {
		t, err := ParseTime(v)
		if err != nil {
			return to, to, badRequest("to: %v", err)
		}
		to = t
	}
	switch from, last := q.Get("from"), q.Get("last"); {
	case from != "":
		t, err := ParseTime(from)
		if err != nil {
			return to, to, badRequest("from: %v", err)
		}
		return t, to, nil
	case last != "":
		d, err := ParseSpan(last)
		if err != nil {
			return to, to, badRequest("last: %v", err)
		}
		return to.Add(-d), to, nil
	}
	return to, to, badRequest("give a window: from=…&to=… or last=8h")
}

func (s *server) toolQuestion(r *http.Request) (*schema.WindowAnswer, schema.ToolQuery, error) {
	q := r.URL.Query()
	tq := schema.ToolQuery{Tool: q.Get("tool"), Result: strings.ToUpper(q.Get("result"))}
	if tq.Tool == "" {
		return nil, tq, badRequest("give a tool: tool=…")
	}
	var err error
	if tq.From, tq.To, err = s.window(q); err != nil {
		return nil, tq, err
	}
	a, err := s.store.ByTool(r.Context(), tq)
	return a, tq, err
}

func (s *server) stationQuestion(r *http.Request) (*schema.WindowAnswer, schema.StationQuery, error) {
	q := r.URL.Query()
	sq := schema.StationQuery{Station: q.Get("station"), Rows: q.Get("rows"), Name: q.Get("name"), Result: strings.ToUpper(q.Get("result"))}
	if sq.Station == "" {
		return nil, sq, badRequest("give a station: station=…")
	}
	var err error
	if sq.From, sq.To, err = s.window(q); err != nil {
		return nil, sq, err
	}
	a, err := s.store.ByStation(r.Context(), sq)
	return a, sq, err
}

func (s *server) tighteningQuestion(r *http.Request) (*schema.WindowAnswer, schema.TighteningQuery, error) {
	q := r.URL.Query()
	tq := schema.TighteningQuery{Tool: q.Get("tool"), Controller: q.Get("controller"), Station: q.Get("station"), Result: strings.ToUpper(q.Get("result"))}
	if p := q.Get("pset"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, tq, badRequest("pset %q: want a number from 1", p)
		}
		tq.Pset = n
	}
	if tq.Tool == "" && tq.Controller == "" && tq.Station == "" {
		return nil, tq, badRequest("give tool=… (a serial), controller=… or station=…&pset=…")
	}
	var err error
	if tq.From, tq.To, err = s.window(q); err != nil {
		return nil, tq, err
	}
	a, err := s.store.ByTightening(r.Context(), tq)
	return a, tq, err
}

// The API.

func (s *server) tighteningAPI(r *http.Request) (any, error) {
	a, _, err := s.tighteningQuestion(r)
	return a, err
}

func (s *server) vinAPI(r *http.Request) (any, error) { return s.birth(r) }

func (s *server) partAPI(r *http.Request) (any, error) {
	a, _, err := s.partQuestion(r)
	return a, err
}

func (s *server) lotAPI(r *http.Request) (any, error) {
	a, _, err := s.lotQuestion(r)
	return a, err
}

func (s *server) toolAPI(r *http.Request) (any, error) {
	a, _, err := s.toolQuestion(r)
	return a, err
}

func (s *server) stationAPI(r *http.Request) (any, error) {
	a, _, err := s.stationQuestion(r)
	return a, err
}

// The pages.

func (s *server) search(r *http.Request) (string, any, error) {
	now := s.cfg.Now().UTC()
	return "search.html", map[string]any{
		"From": now.Add(-7 * 24 * time.Hour).Format("2006-01-02T15:04"),
		"To":   now.Format("2006-01-02T15:04"),
	}, nil
}

// findVIN sends the search form's VIN to its birth record.
func (s *server) findVIN(w http.ResponseWriter, r *http.Request) {
	v := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("vin")))
	if v == "" {
		http.Redirect(w, r, s.cfg.Base+"/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, s.cfg.Base+"/vin/"+url.PathEscape(v), http.StatusSeeOther)
}

func (s *server) vinPage(r *http.Request) (string, any, error) {
	b, err := s.birth(r)
	return "vin.html", b, err
}

// certificateData is the birth certificate: the record, the plant, when it
// was printed and a fingerprint of the events behind it.
type certificateData struct {
	schema.BirthRecord
	Plant       string
	PrintedAt   time.Time
	Fingerprint string
	FirstSeq    int64
	LastSeq     int64
	Events      int
	ByStation   []stationJoints
}

// stationJoints is a station's joints, for the certificate's compact table.
type stationJoints struct {
	Station, EventID string
	Joints           []event.Joint
}

func (s *server) certificate(r *http.Request) (string, any, error) {
	b, err := s.birth(r)
	if err != nil {
		return "", nil, err
	}
	d := certificateData{BirthRecord: b, Plant: s.cfg.Plant, PrintedAt: s.cfg.Now()}
	// The fingerprint is sha256 over the car's event hashes in log order:
	// the same record always prints the same fingerprint, and any change
	// to an event behind it changes it.
	type ev struct {
		seq  int64
		hash string
	}
	var evs []ev
	for _, c := range b.Events {
		evs = append(evs, ev{c.Seq, c.Hash})
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].seq < evs[j].seq })
	h := sha256.New()
	for _, e := range evs {
		raw, _ := hex.DecodeString(e.hash)
		h.Write(raw)
	}
	d.Fingerprint = hex.EncodeToString(h.Sum(nil))
	d.Events = len(evs)
	if len(evs) > 0 {
		d.FirstSeq, d.LastSeq = evs[0].seq, evs[len(evs)-1].seq
	}
	for _, v := range b.Visits {
		if len(v.Joints) > 0 {
			d.ByStation = append(d.ByStation, stationJoints{Station: v.Station, EventID: v.EventID, Joints: v.Joints})
		}
	}
	return "certificate.html", d, nil
}

func (s *server) partPage(r *http.Request) (string, any, error) {
	a, serials, err := s.partQuestion(r)
	return "parts.html", map[string]any{"Title": "Part serial " + strings.Join(serials, ", "), "A": a,
		"API": "api/part?" + r.URL.RawQuery}, err
}

func (s *server) lotPage(r *http.Request) (string, any, error) {
	a, q, err := s.lotQuestion(r)
	title := "Lot " + strings.Join(q.Lots, ", ")
	if q.PartNumber != "" {
		title += " of part " + q.PartNumber
	}
	if q.Supplier != "" {
		title += " from " + q.Supplier
	}
	return "parts.html", map[string]any{"Title": title, "A": a, "API": "api/lot?" + r.URL.RawQuery}, err
}

func (s *server) toolPage(r *http.Request) (string, any, error) {
	a, q, err := s.toolQuestion(r)
	title := fmt.Sprintf("Tool %s from %s to %s", q.Tool, s.when(q.From), s.when(q.To))
	if q.Result != "" {
		title += ", " + q.Result + " only"
	}
	return "window.html", map[string]any{"Title": title, "A": a, "API": "api/tool?" + r.URL.RawQuery}, err
}

func (s *server) tighteningPage(r *http.Request) (string, any, error) {
	a, q, err := s.tighteningQuestion(r)
	what := "Tool " + q.Tool
	switch {
	case q.Controller != "":
		what = "Controller " + q.Controller
	case q.Tool == "":
		what = fmt.Sprintf("Station %s pset %d", q.Station, q.Pset)
	}
	title := fmt.Sprintf("%s tightenings from %s to %s", what, s.when(q.From), s.when(q.To))
	if q.Result != "" {
		title += ", " + q.Result + " only"
	}
	return "window.html", map[string]any{"Title": title, "A": a, "API": "api/tightenings?" + r.URL.RawQuery}, err
}

func (s *server) stationPage(r *http.Request) (string, any, error) {
	a, q, err := s.stationQuestion(r)
	title := fmt.Sprintf("Station %s from %s to %s", q.Station, s.when(q.From), s.when(q.To))
	if q.Name != "" {
		title += ", " + q.Name
	}
	if q.Result != "" {
		title += ", " + q.Result + " only"
	}
	return "window.html", map[string]any{"Title": title, "A": a, "API": "api/station?" + r.URL.RawQuery}, err
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
			out = append(out, f)
		}
	}
	return out
}

// ParseTime reads a time as the trace questions take it: RFC 3339, a
// datetime-local form value (2026-11-25T08:00, UTC) or a date (UTC
// midnight).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-25T08:00:00Z) or a date (2026-11-25)", s)
}

// ParseSpan reads the length of a window: a Go duration (8h, 90m) or
// whole days (7d).
func ParseSpan(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("span %q: want a positive number of days (7d) or a duration (8h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("span %q: want a positive duration (8h, 90m) or days (7d)", s)
	}
	return d, nil
}
