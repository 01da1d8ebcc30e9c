package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keiline/keiline/schema"
)

// The paths Auth.Handler serves itself.
const (
	// PathLogin: GET the sign-in page (?next=/path to come back to), POST
	// user and password.
	PathLogin = "/login"
	// PathLogout: POST (with the CSRF token) ends the session.
	PathLogout = "/logout"
	// PathSession: GET the signed-in identity and its CSRF token as JSON,
	// for pages' scripts.
	PathSession = "/session"
	// PathPassword: GET the form, POST current, new and confirm to change
	// one's own password.
	PathPassword = "/password"
	// PathKiosk: GET the display sign-in page (/kiosk#kl_… signs in at
	// once), POST token.
	PathKiosk = "/kiosk"
	// PathStatic is the prefix of the pages' stylesheet and script.
	PathStatic = "/auth/static/"
)

// Refusals of a password check.
var (
	errRefused     = &Error{Status: http.StatusUnauthorized, Msg: "wrong user name or password, or too many wrong passwords: try again later"}
	errRateLimited = &Error{Status: http.StatusTooManyRequests, Msg: "too many attempts: wait a minute and try again"}
)

func (a *Auth) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET "+PathLogin, a.loginPage)
	m.HandleFunc("POST "+PathLogin, a.login)
	m.HandleFunc("POST "+PathLogout, a.logout)
	m.HandleFunc("GET "+PathSession, a.session)
	m.HandleFunc("GET "+PathPassword, a.passwordPage)
	m.HandleFunc("POST "+PathPassword, a.changePassword)
	m.HandleFunc("GET "+PathKiosk, a.kioskPage)
	m.HandleFunc("POST "+PathKiosk, a.kiosk)
	m.HandleFunc("GET "+PathStatic+"{file}", a.pages.serveStatic)
	return m
}

// attempt is one password check.
type attempt struct {
	name, password string
	client         string
	kind           string // schema.FailureLogin, FailureSignature, FailurePasswordChange
}

// verify checks a's password with the rate limits and the lockout and
// returns the user. Every refusal takes one argon2id computation, whether
// the name is a user or not, and returns errRefused (or errRateLimited):
// the caller cannot tell an unknown name, a wrong password, a locked or a
// disabled user apart. A correct password clears the count of wrong ones.
func (a *Auth) verify(ctx context.Context, at attempt) (*schema.Credentials, error) {
	now := a.now()
	if !a.byAddr.allow(at.client, now) || !a.byName.allow(at.name, now) {
		a.log.Warn("password check rate limited", "kind", at.kind, "client", at.client)
		metricSignIns.WithLabelValues("rate_limited").Inc()
		return nil, errRateLimited
	}
	c, err := a.store.UserByName(ctx, at.name)
	if errors.Is(err, schema.ErrNotFound) {
		_, _, _ = a.checkHash(ctx, a.dummyHash, at.password)
		a.log.Info("password refused", "kind", at.kind, "reason", schema.ReasonUnknownUser, "client", at.client)
		return nil, a.fail(ctx, schema.LoginFailure{At: now, Client: at.client, Kind: at.kind, Reason: schema.ReasonUnknownUser})
	}
	if err != nil {
		return nil, err
	}
	ok, stale, err := a.checkHash(ctx, c.PasswordHash, at.password)
	if err != nil {
		return nil, err
	}
	f := schema.LoginFailure{At: now, UserID: c.ID, Client: at.client, Kind: at.kind}
	switch {
	case c.Disabled:
		f.Reason = schema.ReasonDisabled
	case now.Before(c.LockedUntil):
		f.Reason = schema.ReasonLocked
	case !ok:
		f.Reason = schema.ReasonWrongPassword
	}
	if f.Reason != "" {
		a.log.Info("password refused", "kind", at.kind, "reason", f.Reason, "user", c.Name, "client", at.client)
		return nil, a.fail(ctx, f)
	}
	if at.kind == schema.FailureLogin {
		err = a.store.RecordLogin(ctx, c.ID, now)
	} else {
		err = a.store.ClearFailedLogins(ctx, c.ID)
	}
	if err != nil {
		return nil, err
	}
	if stale {
		a.rehash(ctx, &c, at.password)
	}
	metricSignIns.WithLabelValues("ok").Inc()
	return &c, nil
}

// checkHash verifies password against encoded in one of the hasher's
// slots. A hash keiline cannot read is an error.
func (a *Auth) checkHash(ctx context.Context, encoded, password string) (ok, stale bool, err error) {
	herr := a.hasher.do(ctx, func() { ok, stale, err = verifyPassword(encoded, password) })
	if herr != nil {
		return false, false, herr
	}
	return ok, stale, err
}

// fail records f and returns errRefused (or the store's error). A wrong
// password that reaches the threshold locks the user.
func (a *Auth) fail(ctx context.Context, f schema.LoginFailure) error {
	until, err := a.store.RecordLoginFailure(ctx, f, a.cfg.LockoutThreshold, a.cfg.LockoutDuration)
	if err != nil {
		return err
	}
	metricSignIns.WithLabelValues("refused").Inc()
	if !until.IsZero() {
		metricLockouts.Inc()
		a.log.Warn("user locked after wrong passwords", "user_id", f.UserID, "wrong_passwords", a.cfg.LockoutThreshold,
			"locked_until", until, "client", f.Client)
	}
	return errRefused
}

// rehash replaces c's hash made with older parameters; a failure is only
// logged (the old hash still works).
func (a *Auth) rehash(ctx context.Context, c *schema.Credentials, password string) {
	var hash string
	var err error
	if herr := a.hasher.do(ctx, func() { hash, err = HashPassword(password) }); herr != nil {
		return
	}
	if err == nil {
		err = a.store.UpdatePasswordHash(ctx, c.ID, c.PasswordHash, hash)
	}
	if err != nil {
		a.log.Warn("rehash password", "user", c.Name, "err", err)
	}
}

// readForm parses r's form, at most FormBodyMax bytes.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, FormBodyMax)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ErrTooLarge
		}
		return BadRequest("the form could not be read")
	}
	return nil
}

// normalizeName is a user name as typed, as it is stored: trimmed and in
// lower case.
func normalizeName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (a *Auth) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if id, err := a.sessionIdentity(w, r); err == nil && id.Kind == KindUser {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p := page{Lang: Lang(w, r), Title: "sign_in", Next: next}
	if r.URL.Query().Get("msg") == "signed_out" {
		p.Msg, p.OK = "signed_out", true
	}
	a.pages.render(w, r, http.StatusOK, "login.html", p)
}

// login checks the form's user and password and starts a session. Every
// refusal shows the same page, whatever its reason.
func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	p := page{Lang: Lang(nil, r), Title: "sign_in", Next: "/"}
	if err := a.checkOrigin(r); err != nil {
		writeError(w, r, err)
		return
	}
	if err := readForm(w, r); err != nil {
		p.Msg = "bad_form"
		a.pages.render(w, r, http.StatusBadRequest, "login.html", p)
		return
	}
	if l := supportedLang(r.PostForm.Get("lang")); l != "" {
		p.Lang = l
	}
	p.Next = safeNext(r.PostForm.Get("next"))
	c, err := a.verify(r.Context(), attempt{name: normalizeName(r.PostForm.Get("user")), password: r.PostForm.Get("password"),
		client: clientAddr(r), kind: schema.FailureLogin})
	switch {
	case errors.Is(err, errRateLimited):
		w.Header().Set("Retry-After", "60")
		p.Msg = "rate_limited"
		a.pages.render(w, r, http.StatusTooManyRequests, "login.html", p)
		return
	case errors.Is(err, errRefused):
		p.Msg = "refused"
		a.pages.render(w, r, http.StatusUnauthorized, "login.html", p)
		return
	case err != nil:
		writeError(w, r, err)
		return
	}
	// A session this browser had (another user's, a kiosk's) ends: the
	// sign-in always gets a new id.
	if old, err := r.Cookie(a.cookieName(r)); err == nil {
		if raw, ok := parseSessionID(old.Value); ok {
			if err := a.store.DeleteSession(r.Context(), sessionHash(raw)); err != nil {
				writeError(w, r, err)
				return
			}
		}
	}
	if _, err := a.startSession(r.Context(), w, r, c.ID, 0, time.Time{}); err != nil {
		writeError(w, r, err)
		return
	}
	a.log.Info("signed in", "user", c.Name, "client", clientAddr(r))
	a.prune(r.Context())
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

// prune deletes expired sessions and old failures, at most once per
// pruneInterval; a failure is only logged.
func (a *Auth) prune(ctx context.Context) {
	now := a.now()
	a.pruneMu.Lock()
	due := now.Sub(a.lastPrune) >= pruneInterval
	if due {
		a.lastPrune = now
	}
	a.pruneMu.Unlock()
	if !due {
		return
	}
	if _, err := a.store.PruneSessions(ctx, now.Add(-a.cfg.IdleTimeout), now.Add(-a.cfg.AbsoluteTimeout), now); err != nil {
		a.log.Warn("prune sessions", "err", err)
	}
	if _, err := a.store.PruneLoginFailures(ctx, now.Add(-LoginFailureRetention)); err != nil {
		a.log.Warn("prune login failures", "err", err)
	}
}

// sessionFor returns the identity of r's session for the own routes that
// need one, checking a state-changing request's origin and CSRF token.
func (a *Auth) sessionFor(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	id, err := a.sessionIdentity(w, r)
	if errors.Is(err, errNoSession) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if !safeMethod(r.Method) {
		if err := a.checkStateChange(w, r, id); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// logout ends the session and goes to the sign-in page.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	id, err := a.sessionFor(w, r)
	if errors.Is(err, ErrUnauthenticated) {
		http.Redirect(w, r, PathLogin, http.StatusSeeOther)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := a.store.DeleteSession(r.Context(), id.session); err != nil {
		writeError(w, r, err)
		return
	}
	a.clearSessionCookie(w, r)
	a.log.Info("signed out", "who", id.String(), "client", clientAddr(r))
	http.Redirect(w, r, PathLogin+"?msg=signed_out", http.StatusSeeOther)
}

// sessionDoc is GET /session's answer.
type sessionDoc struct {
	Kind        Kind    `json:"kind"`
	User        string  `json:"user,omitempty"`
	DisplayName string  `json:"display_name,omitempty"`
	Roles       []Role  `json:"roles,omitempty"`
	Token       string  `json:"token,omitempty"`
	Scopes      []Scope `json:"scopes,omitempty"`
	CSRFToken   string  `json:"csrf_token"`
	CSRFHeader  string  `json:"csrf_header"`
}

func (a *Auth) session(w http.ResponseWriter, r *http.Request) {
	id, err := a.sessionFor(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	doc := sessionDoc{Kind: id.Kind, User: id.User, DisplayName: id.DisplayName, Roles: id.Roles, Token: id.TokenName, Scopes: id.Scopes,
		CSRFToken: id.csrf, CSRFHeader: CSRFHeader}
	b, _ := json.Marshal(doc) // strings and slices of strings always encode
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(append(b, '\n'))
}
