package web

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// HSTSMaxAge is the Strict-Transport-Security max-age sent under TLS: one
// year.
const HSTSMaxAge = 365 * 24 * 60 * 60

// CSP is a Content-Security-Policy: directives in order, each with its
// sources. Build one from DefaultCSP with With and Add; the zero CSP is
// empty. A CSP is a value: With and Add return a changed copy.
type CSP struct {
	directives []cspDirective
}

type cspDirective struct {
	name    string
	sources []string
}

// DefaultCSP is the policy of every response unless a handler sets its
// own: everything from the page's own origin only, no inline script or
// style, no plugins, no framing, forms only to the own origin.
func DefaultCSP() CSP {
	return CSP{}.
		With("default-src", "'self'").
		With("script-src", "'self'").
		With("style-src", "'self'").
		With("img-src", "'self'", "data:").
		With("object-src", "'none'").
		With("base-uri", "'none'").
		With("form-action", "'self'").
		With("frame-ancestors", "'none'")
}

// With returns c with directive's sources replaced by sources (added at the
// end when c has no such directive). It panics on a directive or source
// that could break the header (a ';', ',', quote-less space or control
// character): policies are built from constants.
func (c CSP) With(directive string, sources ...string) CSP {
	checkCSPToken(directive)
	for _, s := range sources {
		checkCSPToken(s)
	}
	out := CSP{directives: slices.Clone(c.directives)}
	for i, d := range out.directives {
		if d.name == directive {
			out.directives[i] = cspDirective{directive, slices.Clone(sources)}
			return out
		}
	}
	out.directives = append(out.directives, cspDirective{directive, slices.Clone(sources)})
	return out
}

// Add returns c with sources added to directive's (see With).
func (c CSP) Add(directive string, sources ...string) CSP {
	for _, d := range c.directives {
		if d.name == directive {
			return c.With(directive, append(slices.Clone(d.sources), sources...)...)
		}
	}
	return c.With(directive, sources...)
}

// String is the header value.
func (c CSP) String() string {
	parts := make([]string, len(c.directives))
	for i, d := range c.directives {
		parts[i] = strings.Join(append([]string{d.name}, d.sources...), " ")
	}
	return strings.Join(parts, "; ")
}

func checkCSPToken(s string) {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' || r < 0x20 || r == 0x7f }) {
		panic(fmt.Sprintf("web: CSP token %q is empty or holds a separator", s))
	}
}

// HashSource returns the CSP source that allows exactly the inline block b
// ('sha256-…').
func HashSource(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// StyleHashes returns the CSP sources of every <style> block of the files
// of fsys matching pattern (fs.Glob), for style-src. A block holding a
// template action ({{) is an error: its text would change and no longer
// match its hash.
func StyleHashes(fsys fs.FS, pattern string) ([]string, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, fmt.Errorf("style hashes: %w", err)
	}
	var out []string
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("style hashes: %w", err)
		}
		for _, m := range styleBlock.FindAllSubmatch(b, -1) {
			if strings.Contains(string(m[1]), "{{") {
				return nil, fmt.Errorf("style hashes: %s: a <style> block must be static text", n)
			}
			if h := HashSource(m[1]); !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// setSecurityHeaders sets the headers every response carries; a handler
// may replace any of them (a static asset its Cache-Control, traceweb its
// CSP). Under TLS it adds HSTS.
func setSecurityHeaders(h http.Header, csp string, tls bool) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Pages show record data: no browser or proxy keeps a copy.
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Cookie, Authorization")
	if tls {
		h.Set("Strict-Transport-Security", fmt.Sprintf("max-age=%d", HSTSMaxAge))
	}
}
