package terminal

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
)

//go:embed assets
var assets embed.FS

// pages are the terminal's template and stylesheet.
type pages struct {
	tmpl *template.Template
	css  func(w http.ResponseWriter, r *http.Request) error
}

func newPages() (*pages, error) {
	for _, l := range web.Languages {
		if len(texts[l]) != len(texts[web.Languages[0]]) {
			return nil, fmt.Errorf("terminal: texts: %q has %d texts, %q %d", l, len(texts[l]), web.Languages[0], len(texts[web.Languages[0]]))
		}
	}
	t, err := template.New("station.html").Funcs(template.FuncMap{
		"label": func(v interface{ Label(string) string }, lang string) string { return v.Label(lang) },
		"time":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	}).ParseFS(assets, "assets/station.html")
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	css, err := assets.ReadFile("assets/terminal.css")
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	return &pages{tmpl: t, css: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, err := w.Write(css)
		return err
	}}, nil
}

// view is what the station page shows.
type view struct {
	Lang    string
	T       map[string]string
	Langs   []langLink
	Line    *line.Config
	Station *line.Station
	Who     *web.Identity
	CSRF    string
	// Present is the VIN the station's PLC reports present; Car the car
	// shown (Present, or the one asked for with ?vin=).
	Present string
	Car     *schema.CarAtStation
	NoCar   string // a VIN asked for that the record does not know
	Saved   string
	// Form and Errors are the form refused and its problems; Values its
	// values, to fill it again.
	Form   string
	Errors []fieldError
	Values url.Values
	Can    map[string]bool
	Rework bool
	// Severities, Leaves and Meaning are the choices the forms offer.
	Severities []string
	Leaves     []line.LeafReason
	Meaning    string
	Recent     []schema.HumanAction
	// Stop is the station's latest stop, offered to classify.
	Stop *schema.StationState
}

type langLink struct {
	Name, Href string
	Active     bool
}

var langNames = map[string]string{"en": "EN", "ja": "日本語"}

// Holds returns the car's open holds of kind.
func (v *view) Holds(kinds ...string) []schema.HoldRecord {
	if v.Car == nil {
		return nil
	}
	var out []schema.HoldRecord
	for _, h := range v.Car.Holds {
		if slices.Contains(kinds, h.Kind) {
			out = append(out, h)
		}
	}
	return out
}

// Err returns the problem with field of form name, "" when none.
func (v *view) Err(form, field string) string {
	if v.Form != form {
		return ""
	}
	for _, e := range v.Errors {
		if e.Field == field {
			return e.Msg
		}
	}
	return ""
}

// Val returns the value of field the refused form name had.
func (v *view) Val(form, field string) string {
	if v.Form != form {
		return ""
	}
	return v.Values.Get(field)
}

// serve shows a station's page.
func (t *Terminal) serve(w http.ResponseWriter, r *http.Request) error {
	st, err := t.station(r)
	if err != nil {
		return err
	}
	return t.render(w, r, st, http.StatusOK, "", nil)
}

// render writes the station page, with the refused form f of name if
// any, at status.
func (t *Terminal) render(w http.ResponseWriter, r *http.Request, st *line.Station, status int, name string, f *form) error {
	ctx := r.Context()
	id := web.IdentityFrom(ctx)
	lang := web.Lang(w, r)
	v := &view{Lang: lang, T: texts[lang], Line: t.lc, Station: st, Who: id, CSRF: web.CSRFToken(r), Can: map[string]bool{},
		Rework: st.Optional || st.Zone == "rework", Severities: event.Severities, Leaves: t.lc.People.Leaves(), Meaning: t.lc.People.Meaning(),
		Saved: r.URL.Query().Get("saved")}
	for _, a := range actions {
		v.Can[a.name] = id.HasRole(a.roles...) && (a.name != "repair" || v.Rework)
	}
	for _, l := range web.Languages {
		q := url.Values{"lang": {l}}
		if vin := r.URL.Query().Get("vin"); vin != "" {
			q.Set("vin", vin)
		}
		v.Langs = append(v.Langs, langLink{Name: langNames[l], Href: "?" + q.Encode(), Active: l == lang})
	}
	var err error
	if v.Present, err = t.cfg.Record.StationVIN(ctx, st.ID); err != nil {
		return err
	}
	vin := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("vin")))
	if f != nil {
		v.Form, v.Errors, v.Values, v.Saved = name, f.errs, f.values, ""
		vin = strings.ToUpper(strings.TrimSpace(f.values.Get("vin")))
	}
	if vin == "" {
		vin = v.Present
	}
	if vin != "" {
		v.Car, err = t.cfg.Record.CarAt(ctx, vin)
		if errors.Is(err, schema.ErrNotFound) {
			v.Car, v.NoCar, err = nil, vin, nil
		}
		if err != nil {
			return err
		}
	}
	if v.Recent, err = t.cfg.Record.StationActions(ctx, st.ID, t.cfg.Now().Add(-24*time.Hour), 10); err != nil {
		return err
	}
	if stop, ok, err := t.cfg.Record.LastStop(ctx, st.ID); err != nil {
		return err
	} else if ok {
		v.Stop = &stop
	}
	var buf bytes.Buffer
	if err := t.page.tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("station %s: render: %w", st.ID, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", lang)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}
