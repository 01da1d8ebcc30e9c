package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Languages are the languages keiline's pages speak; the first is the
// default.
var Languages = []string{"en", "ja"}

// LangCookie remembers the language chosen with a page's switch (the
// dashboard's cookie too).
const LangCookie = "keiline_lang"

// langCookieMaxAge is how long the language choice is remembered: a year.
const langCookieMaxAge = 365 * 24 * 3600

// Lang returns the language of r's page: ?lang= (remembered in LangCookie
// when w is not nil), else the cookie, else the Accept-Language the
// visitor prefers most among Languages, else the default.
func Lang(w http.ResponseWriter, r *http.Request) string {
	if l := supportedLang(r.URL.Query().Get("lang")); l != "" {
		if w != nil {
			http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: l, Path: "/", MaxAge: langCookieMaxAge, SameSite: http.SameSiteLaxMode})
		}
		return l
	}
	if c, err := r.Cookie(LangCookie); err == nil {
		if l := supportedLang(c.Value); l != "" {
			return l
		}
	}
	return negotiateLang(r.Header.Get("Accept-Language"))
}

// supportedLang returns the supported language a tag names, or "".
func supportedLang(tag string) string {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	if slices.Contains(Languages, base) {
		return base
	}
	return ""
}

// negotiateLang picks from an Accept-Language header (RFC 9110 section
// 12.5.4) the supported language with the highest weight, the first
// listed on a tie; the default when none is supported.
func negotiateLang(header string) string {
	best, bestQ := Languages[0], 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if l := supportedLang(tag); l != "" && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}
