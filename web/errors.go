package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// Error is an error with the HTTP status and the message the client may
// see; Err, if set, is the cause, which only the log sees.
type Error struct {
	Status int
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error of the same status and message, so
// errors.Is(err, ErrForbidden) holds for any wrap of it.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Msg == e.Msg
}

// The errors the security middleware answers with.
var (
	// ErrUnauthenticated: no identity, or one that has expired.
	ErrUnauthenticated = &Error{Status: http.StatusUnauthorized, Msg: "sign in first (or give a valid API token)"}
	// ErrForbidden: an identity whose roles or scopes do not allow it.
	ErrForbidden = &Error{Status: http.StatusForbidden, Msg: "your role does not allow this"}
	// ErrCSRF: a state-changing request of a session without its CSRF
	// token.
	ErrCSRF = &Error{Status: http.StatusForbidden, Msg: "missing or wrong CSRF token: reload the page and try again"}
	// ErrCrossOrigin: a state-changing request from another site.
	ErrCrossOrigin = &Error{Status: http.StatusForbidden, Msg: "cross-origin request refused"}
	// ErrTooLarge: a request body over the route's limit.
	ErrTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Msg: "request body too large"}
)

// BadRequest returns an *Error with status 400 and the formatted message.
func BadRequest(format string, a ...any) error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, a...)}
}

// NotFound returns an *Error with status 404 and msg.
func NotFound(msg string) error { return &Error{Status: http.StatusNotFound, Msg: msg} }

// HandlerFunc is an HTTP handler that returns its error: an *Error is
// shown as it says; any other error is logged with its cause and shown as
// a generic message.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and answers its error.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		writeError(w, r, err)
	}
}

type loggerKey struct{}

// logger returns the middleware's logger of the request, or slog's
// default outside the middleware.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// internalMsg is what a client sees of a server error.
const internalMsg = "internal error; the cause is in the server log"

// writeError answers err: the status and message of an *Error, or 500 and
// a generic message with the cause logged. A request whose client went
// away is not answered.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	if !errors.As(err, &he) {
		if r.Context().Err() != nil {
			return
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			he = ErrTooLarge
		} else {
			logger(r.Context()).Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &Error{Status: http.StatusInternalServerError, Msg: internalMsg}
		}
	}
	h := w.Header()
	if he.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="keiline"`)
	}
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if wantsHTML(r) {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(he.Status)
		_, _ = w.Write([]byte(he.Msg + "\n"))
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(he.Status)
	b, _ := json.Marshal(map[string]string{"error": he.Msg}) // a map of strings always encodes
	_, _ = w.Write(append(b, '\n'))
}

// wantsHTML reports whether the client is a browser asking for a page
// rather than a program asking for JSON.
func wantsHTML(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
