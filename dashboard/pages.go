package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
	"github.com/keiline/keiline/traceweb"
)

// The server-rendered pages of the dashboard (SPC, the capability report,
// the shift report): no script at all, one inline style sheet and the
// charts' own, allowed by hash, so they print and make PDFs as they are.

//go:embed templates
var pageFS embed.FS

var (
	// pageTexts are the pages' texts by language (templates/i18n.json).
	pageTexts = mustTexts()
	// pageCSS is the pages' style sheet, inlined in each page.
	pageCSS = mustRead("templates/pages.css")
	// pagesCSP allows the pages nothing but their style sheet and the
	// SVG charts' style block, by hash.
	pagesCSP = "default-src 'none'; style-src " + styleHash(pageCSS) + " " + svgStyleHash() +
		"; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

func mustRead(name string) string {
	b, err := pageFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	return string(b)
}

func mustTexts() map[string]map[string]string {
	var t map[string]map[string]string
	if err := json.Unmarshal([]byte(mustRead("templates/i18n.json")), &t); err != nil {
		panic("dashboard: templates/i18n.json: " + err.Error())
	}
	for _, l := range languages {
		if len(t[l]) == 0 {
			panic("dashboard: templates/i18n.json: no texts for " + l)
		}
	}
	return t
}

func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

var svgStyle = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// svgStyleHash is the CSP source of the style block spc.RenderSVG writes,
// taken from a drawing of a tiny chart.
func svgStyleHash() string {
	pts := []spc.Point{{Value: 1}, {Value: 2}, {Value: 1.5}}
	l, err := spc.ComputeLimits(pts, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err == nil {
		var c spc.Chart
		if c, err = spc.Check(l, pts, nil); err == nil {
			var b []byte
			if b, err = spc.RenderSVG(c, spc.SVGOptions{}); err == nil {
				if m := svgStyle.FindSubmatch(b); m != nil {
					return styleHash(string(m[1]))
				}
				err = errors.New("no style block")
			}
		}
	}
	panic("dashboard: the SVG chart's style: " + err.Error())
}

// pageSet is the page templates, one set per language.
type pageSet map[string]*template.Template

func newPageSet() (pageSet, error) {
	ps := pageSet{}
	for _, lang := range languages {
		tx := pageTexts[lang]
		funcs := template.FuncMap{
			"css": func() template.CSS { return template.CSS(pageCSS) },
			"t": func(key string) string {
				if s, ok := tx[key]; ok {
					return s
				}
				return key
			},
			// tf fills {name} placeholders of a text: tf "key" "name" value ….
			"tf": func(key string, kv ...any) string {
				s := tx[key]
				for i := 0; i+1 < len(kv); i += 2 {
					s = strings.ReplaceAll(s, "{"+fmt.Sprint(kv[i])+"}", fmt.Sprint(kv[i+1]))
				}
				return s
			},
			"when":     func(t time.Time) string { return when(t) },
			"num":      fnum,
			"pct":      pct,
			"dur":      dur,
			"kindName": func(k string) string { return tx["kind_"+k] },
			"ruleName": func(r spc.Rule) string { return RuleName(r, lang) },
			"keyQuery": func(k schema.CharKey) template.URL { return template.URL(keyQuery(k).Encode()) },
			"svg":      func(b []byte) template.HTML { return template.HTML(b) }, // spc.RenderSVG escapes every text it writes
			"utcInput": func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") },
			"add":      func(a, b int) int { return a + b },
			"neg":      func(a int) int { return -a },
			"pctOf":    func(x float64) float64 { return x * 100 },
		}
		t, err := template.New("").Funcs(funcs).ParseFS(pageFS, "templates/*.html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: page templates: %w", err)
		}
		ps[lang] = t
	}
	return ps, nil
}

// render writes the page name in lang with data, or the error page.
func (ps pageSet) render(w http.ResponseWriter, status int, lang, name string, data map[string]any) error {
	var buf bytes.Buffer
	if err := ps[lang].ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Security-Policy", pagesCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", lang)
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// pageFunc is a page handler: it returns the template, its data and its
// error; an *httpError is shown on the error page as it is, any other
// error is logged and shown as a generic message.
type pageFunc func(r *http.Request, lang string) (string, map[string]any, error)

func (s *Server) page(ps pageSet, fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := langOf(w, r)
		name, data, err := fn(r, lang)
		var rd *redirect
		if errors.As(err, &rd) {
			http.Redirect(w, r, rd.to, http.StatusSeeOther)
			return
		}
		if data == nil {
			data = map[string]any{}
		}
		data["Lang"] = lang
		data["OtherLangQuery"] = template.URL(otherLangQuery(r, lang))
		if err == nil {
			err = ps.render(w, http.StatusOK, lang, name, data)
		}
		if err == nil {
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
		case errors.Is(err, schema.ErrBadCharacteristic):
			he = &httpError{http.StatusBadRequest, err.Error()}
		case r.Context().Err() != nil:
			return
		default:
			s.log.Error("page failed", "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "internal error; see the server log"}
		}
		_ = ps.render(w, he.status, lang, "error.html", map[string]any{"Lang": lang, "Title": pageTexts[lang]["error"],
			"Code": he.status, "Message": he.msg, "OtherLangQuery": data["OtherLangQuery"]})
	})
}

// langOf is the visitor's language: ?lang (remembered in a cookie), the
// cookie, else the browser's.
func langOf(w http.ResponseWriter, r *http.Request) string {
	if l := supported(r.URL.Query().Get("lang")); l != "" {
		http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode})
		return l
	}
	if c, err := r.Cookie(LangCookie); err == nil {
		if l := supported(c.Value); l != "" {
			return l
		}
	}
	return negotiate(r.Header.Get("Accept-Language"))
}

// otherLangQuery is r's query with the language switched.
func otherLangQuery(r *http.Request, lang string) string {
	q := r.URL.Query()
	q.Set("lang", pageTexts[lang]["other_lang"])
	return q.Encode()
}

// keyQuery and keyFrom carry a characteristic in a query.
func keyQuery(k schema.CharKey) url.Values {
	q := url.Values{"kind": {k.Kind}, "station": {k.Station}, "name": {k.Name}}
	if k.Model != "" {
		q.Set("model", k.Model)
	}
	if k.Variant != "" {
		q.Set("variant", k.Variant)
	}
	return q
}

func keyFrom(q url.Values) (schema.CharKey, error) {
	k := schema.CharKey{Kind: q.Get("kind"), Station: q.Get("station"), Name: q.Get("name"), Model: q.Get("model"), Variant: q.Get("variant")}
	if err := k.Validate(); err != nil {
		return k, badRequest("%v", err)
	}
	return k, nil
}

// windowFrom reads from, to (RFC 3339 or a UTC datetime-local) and last
// (8h, 7d) from q; without them the window is def up to now.
func windowFrom(q url.Values, now time.Time, def time.Duration) (time.Time, time.Time, error) {
	to := now
	if v := q.Get("to"); v != "" {
		t, err := traceweb.ParseTime(v)
		if err != nil {
			return to, to, badRequest("to: %v", err)
		}
		to = t
	}
	from := to.Add(-def)
	switch f, last := q.Get("from"), q.Get("last"); {
	case f != "":
		t, err := traceweb.ParseTime(f)
		if err != nil {
			return to, to, badRequest("from: %v", err)
		}
		from = t
	case last != "":
		d, err := traceweb.ParseSpan(last)
		if err != nil {
			return to, to, badRequest("last: %v", err)
		}
		from = to.Add(-d)
	}
	if !from.Before(to) {
		return from, to, badRequest("the window must end after it starts")
	}
	return from, to, nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// fnum formats v with d decimals; "—" for NaN or Inf.
func fnum(d int, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

// pct formats a ratio as a percentage with one decimal; "—" when absent.
func pct(v any) string {
	switch x := v.(type) {
	case *float64:
		if x == nil {
			return "—"
		}
		return fnum(1, *x*100) + " %"
	case float64:
		return fnum(1, x*100) + " %"
	}
	return "—"
}

// dur formats plant seconds as h:mm:ss.
func dur(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}
