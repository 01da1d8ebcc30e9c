package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keiline/keiline/schema"
)

// Session cookies. Under TLS the cookie has the __Host- prefix, which
// browsers accept only Secure, host-only and for Path=/, so a sibling
// host cannot plant one.
const (
	SessionCookie    = "keiline_session"
	SessionCookieTLS = "__Host-keiline_session"
)

// CSRF token transport: a state-changing request of a session sends the
// session's token in the CSRFHeader header (scripts) or the CSRFField
// form field (forms). Pages get it from CSRFToken or GET /session.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// sessionIDBytes is the length of a session id: 256 random bits.
const sessionIDBytes = 32

// b64 encodes ids and tokens: URL-safe, unpadded, and strict (one
// spelling per id: trailing bits must be zero).
var b64 = base64.RawURLEncoding.Strict()

// sessionIDLen is the length of an encoded session id.
var sessionIDLen = b64.EncodedLen(sessionIDBytes)

// newSecret returns n random bytes from crypto/rand, encoded.
func newSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b64.EncodeToString(b)
}

// parseSessionID returns the raw bytes of an encoded session id, or false
// for anything that is not one.
func parseSessionID(v string) ([]byte, bool) {
	if len(v) != sessionIDLen {
		return nil, false
	}
	raw, err := b64.DecodeString(v)
	if err != nil || len(raw) != sessionIDBytes {
		return nil, false
	}
	return raw, true
}

// sessionHash is what the sessions table keeps of a session id.
func sessionHash(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}

// csrfToken derives a session's CSRF token from its id: nothing more to
// store, and the stored hash does not give it away (another domain).
func csrfToken(raw []byte) string {
	h := sha256.New()
	h.Write([]byte("keiline csrf v1\x00"))
	h.Write(raw)
	return b64.EncodeToString(h.Sum(nil))
}

// secure reports whether r reached keiline over TLS (directly, or through
// a proxy that terminates it: Config.BehindTLS).
func (a *Auth) secure(r *http.Request) bool { return r.TLS != nil || a.cfg.BehindTLS }

func (a *Auth) cookieName(r *http.Request) string {
	if a.secure(r) {
		return SessionCookieTLS
	}
	return SessionCookie
}

// setSessionCookie sends the session id: HttpOnly, SameSite=Strict,
// Path=/, Secure under TLS. expires zero makes a browser-session cookie.
func (a *Auth) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	c := &http.Cookie{Name: a.cookieName(r), Value: id, Path: "/", HttpOnly: true, Secure: a.secure(r), SameSite: http.SameSiteStrictMode}
	if !expires.IsZero() {
		c.Expires = expires
		c.MaxAge = max(1, int(expires.Sub(a.now()).Seconds()))
	}
	http.SetCookie(w, c)
}

func (a *Auth) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: a.cookieName(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.secure(r),
		SameSite: http.SameSiteStrictMode})
}

// startSession stores a new session of userID or tokenID and sends its
// cookie. It returns the session's identity fields (hash, CSRF token).
func (a *Auth) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, tokenID int64, expires time.Time) (*Identity, error) {
	id := newSecret(sessionIDBytes)
	raw, _ := parseSessionID(id)
	hash := sessionHash(raw)
	if err := a.store.CreateSession(ctx, schema.NewSession{Hash: hash, UserID: userID, TokenID: tokenID, Client: clientAddr(r), At: a.now()}); err != nil {
		return nil, err
	}
	a.setSessionCookie(w, r, id, expires)
	return &Identity{session: hash, csrf: csrfToken(raw)}, nil
}

// errNoSession marks a request without a usable session.
var errNoSession = errors.New("no session")

// sessionIdentity returns the identity of r's session cookie. A missing,
// malformed, unknown or expired session is errNoSession; an expired one is
// deleted and its cookie cleared. Any other error is the store's.
func (a *Auth) sessionIdentity(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	c, err := r.Cookie(a.cookieName(r))
	if err != nil {
		return nil, errNoSession
	}
	raw, ok := parseSessionID(c.Value)
	if !ok {
		a.clearSessionCookie(w, r)
		return nil, errNoSession
	}
	ctx := r.Context()
	hash := sessionHash(raw)
	s, err := a.store.Session(ctx, hash)
	if errors.Is(err, schema.ErrNotFound) {
		a.clearSessionCookie(w, r)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := a.now()
	id := &Identity{session: hash, csrf: csrfToken(raw)}
	switch {
	case s.User != nil:
		u := s.User
		if u.Disabled || now.Sub(s.LastSeenAt) >= a.cfg.IdleTimeout || now.Sub(s.CreatedAt) >= a.cfg.AbsoluteTimeout ||
			s.CreatedAt.Before(u.PasswordChangedAt) {
			return nil, a.endSession(w, r, hash, "user", u.Name)
		}
		id.Kind, id.UserID, id.User, id.DisplayName = KindUser, u.ID, u.Name, u.DisplayName
		for _, role := range u.Roles {
			id.Roles = append(id.Roles, Role(role))
		}
	case s.Token != nil:
		t := s.Token
		if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
			return nil, a.endSession(w, r, hash, "token", t.Name)
		}
		id.Kind, id.TokenID, id.TokenName = KindKiosk, t.ID, t.Name
		for _, sc := range t.Scopes {
			if Scope(sc) == ScopeDashboardRead { // a kiosk only ever reads
				id.Scopes = append(id.Scopes, Scope(sc))
			}
		}
	default:
		return nil, a.endSession(w, r, hash, "user", "")
	}
	if now.Sub(s.LastSeenAt) >= a.touchEvery {
		if err := a.store.TouchSession(ctx, hash, now); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// endSession deletes an expired session and clears its cookie; it returns
// errNoSession, or the store's error.
func (a *Auth) endSession(w http.ResponseWriter, r *http.Request, hash []byte, key, name string) error {
	a.clearSessionCookie(w, r)
	a.log.Info("session ended: expired, disabled or revoked", key, name, "client", clientAddr(r))
	if err := a.store.DeleteSession(r.Context(), hash); err != nil {
		return err
	}
	return errNoSession
}

// checkCSRF returns nil when r carries id's CSRF token in the CSRFHeader
// header or, for a form, the CSRFField field; ErrCSRF otherwise.
func checkCSRF(w http.ResponseWriter, r *http.Request, id *Identity, formMax int64) error {
	tok := r.Header.Get(CSRFHeader)
	if tok == "" && isForm(r) {
		r.Body = http.MaxBytesReader(w, r.Body, formMax)
		if err := r.ParseMultipartForm(formMax); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return ErrTooLarge
			}
			return BadRequest("the form could not be read")
		}
		tok = r.PostForm.Get(CSRFField)
	}
	if id.csrf == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(id.csrf)) != 1 {
		return ErrCSRF
	}
	return nil
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

// checkOrigin refuses a state-changing request a browser sent from
// another origin: by Sec-Fetch-Site, else Origin against Host (Go's
// http.CrossOriginProtection), else a Referer of another host. A request
// with none of them (a program) passes: its credential decides.
func (a *Auth) checkOrigin(r *http.Request) error {
	if err := a.cop.Check(r); err != nil {
		return ErrCrossOrigin
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return nil
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Host != r.Host && !a.trusted[u.Scheme+"://"+u.Host] {
			return ErrCrossOrigin
		}
	}
	return nil
}
