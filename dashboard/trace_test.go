package dashboard_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	hrefs  = regexp.MustCompile(`(?:href|action)="([^"]*)"`)
	styles = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// TestTracePages: the auditor's trace pages are served by the dashboard
// under /trace/, on its read-only store, with their links working under
// that prefix and the dashboard's security headers.
func TestTracePages(t *testing.T) {
	r := newRig(t, rigOptions{})
	p := &publisher{t: t, r: r, counter: map[string]uint32{}}
	car := testVIN(t, 77)
	p.cycle("W01", car, "OK")

	// The birth record, once the tracker has committed the cycle.
	path := "/trace/vin/" + car
	var res *http.Response
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, body = r.get(t, path)
		if res.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	page := string(body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %s %s: %.300s", path, res.Status, res.Header.Get("Content-Type"), page)
	}
	for _, want := range []string{"VIN <span class=\"mono\">" + car, "W01", "part PN-1", "SN-1", "LOT-1", "SUP"} {
		if !strings.Contains(page, want) {
			t.Errorf("birth record lacks %q", want)
		}
	}
	if _, cert := r.get(t, path+"/certificate"); !strings.Contains(string(cert), "US1 L1") || !strings.Contains(string(cert), "SN-1") {
		t.Errorf("birth certificate lacks the plant and line or the part: %.300s", cert)
	}

	t.Run("security headers", func(t *testing.T) {
		for _, p := range []string{path, "/trace/", path + "/certificate"} {
			res, body := r.get(t, p)
			h := res.Header
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
				t.Errorf("%s: CSP %q, want no script and no unsafe-inline", p, csp)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: headers %v, want the dashboard's", p, h)
			}
			// The pages' inline styles are allowed by their hash, so the
			// browser applies them.
			blocks := styles.FindAllStringSubmatch(string(body), -1)
			if len(blocks) == 0 {
				t.Errorf("%s: no style", p)
			}
			for _, b := range blocks {
				sum := sha256.Sum256([]byte(b[1]))
				if src := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, src) {
					t.Errorf("%s: CSP %q does not allow the page's style %s", p, csp, src)
				}
			}
		}
	})

	t.Run("every link resolves", func(t *testing.T) {
		seen := map[string]bool{}
		for _, p := range []string{path, "/trace/", path + "/certificate"} {
			_, body := r.get(t, p)
			for _, m := range hrefs.FindAllStringSubmatch(string(body), -1) {
				link := html.UnescapeString(m[1])
				if !strings.HasPrefix(link, "/trace/") {
					t.Errorf("%s: link %q is not under /trace/", p, link)
					continue
				}
				if seen[link] {
					continue
				}
				seen[link] = true
				if strings.HasSuffix(link, "/lot") || strings.HasSuffix(link, "/part") || strings.HasSuffix(link, "/tool") || strings.HasSuffix(link, "/station") ||
					strings.HasSuffix(link, "/tightenings") {
					continue // a search form's action: it needs the form's fields
				}
				if res, b := r.get(t, link); res.StatusCode != http.StatusOK {
					t.Errorf("%s: link %s: %s %.200s", p, link, res.Status, b)
				}
			}
		}
		for _, link := range []string{path + "/certificate", "/trace/api/vin/" + car, "/trace/"} {
			if !seen[link] {
				t.Errorf("no link to %s", link)
			}
		}
		// The search forms, filled in.
		for _, q := range []string{"/trace/vin?vin=" + strings.ToLower(car), "/trace/lot?lot=LOT-1", "/trace/part?serial=SN-1"} {
			if res, b := r.get(t, q); res.StatusCode != http.StatusOK || !strings.Contains(string(b), car) {
				t.Errorf("GET %s: %s, want a page naming %s", q, res.Status, car)
			}
		}
	})

	t.Run("the dashboard links to the trace search", func(t *testing.T) {
		_, body := r.get(t, "/")
		if !strings.Contains(string(body), `href="/trace/"`) {
			t.Fatal("the dashboard's page has no link to /trace/")
		}
		res, b := r.get(t, "/trace")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "Which cars got parts of this lot?") {
			t.Errorf("GET /trace: %s %.200s, want the search forms", res.Status, b)
		}
	})

	t.Run("errors stay trace errors", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
		}{
			{"/trace/vin/" + testVIN(t, 999999), http.StatusNotFound},
			{"/trace/vin/NOT-A-VIN", http.StatusBadRequest},
			{"/trace/nope", http.StatusNotFound},
		} {
			if res, b := r.get(t, c.path); res.StatusCode != c.status {
				t.Errorf("GET %s: %s %.200s, want %d", c.path, res.Status, b, c.status)
			}
		}
	})
}
