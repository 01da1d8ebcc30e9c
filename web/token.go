package web

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/keiline/keiline/schema"
)

// API tokens are TokenPrefix and 256 random bits, URL-safe base64: the
// prefix lets secret scanners find a leaked one. Only their sha256 is
// stored. A client sends one as "Authorization: Bearer kl_…", never in a
// URL; a line-side TV, which cannot set headers, opens /kiosk#kl_… (see
// PathKiosk): the part after # never reaches a server, its log or a
// Referer.
const TokenPrefix = "kl_"

// tokenBytes is the random part of a token.
const tokenBytes = 32

// tokenLen is the length of a token.
var tokenLen = len(TokenPrefix) + b64.EncodedLen(tokenBytes)

// newToken returns a fresh token and its hash.
func newToken() (string, []byte) {
	tok := TokenPrefix + newSecret(tokenBytes)
	h, _ := parseToken(tok)
	return tok, h
}

// parseToken returns the hash of tok, or false when tok is not a token.
func parseToken(tok string) ([]byte, bool) {
	if len(tok) != tokenLen || !strings.HasPrefix(tok, TokenPrefix) {
		return nil, false
	}
	raw, err := b64.DecodeString(tok[len(TokenPrefix):])
	if err != nil || len(raw) != tokenBytes {
		return nil, false
	}
	h := sha256.Sum256([]byte(tok))
	return h[:], true
}

// bearer returns the credentials of r's Authorization header when it
// names the Bearer scheme (RFC 6750 section 2.1), and whether it does.
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", v != "" // another scheme is no identity, but not anonymous either
	}
	return strings.TrimSpace(cred), true
}

// errBadToken answers a request whose token is unknown, malformed,
// expired or revoked.
var errBadToken = &Error{Status: http.StatusUnauthorized, Msg: "the API token is not valid: unknown, expired or revoked"}

// tokenIdentity returns the identity of the API token tok: errBadToken when
// it is not a valid token.
func (a *Auth) tokenIdentity(r *http.Request, tok string) (*Identity, error) {
	t, err := a.validToken(r, tok)
	if errors.Is(err, errBadToken) {
		metricRefused.WithLabelValues("bad_token").Inc()
	}
	if err != nil {
		return nil, err
	}
	id := &Identity{Kind: KindToken, TokenID: t.ID, TokenName: t.Name}
	for _, s := range t.Scopes {
		id.Scopes = append(id.Scopes, Scope(s))
	}
	return id, nil
}

// validToken returns the stored token tok, touching its last use.
func (a *Auth) validToken(r *http.Request, tok string) (schema.Token, error) {
	hash, ok := parseToken(tok)
	if !ok {
		a.log.Info("API token refused: malformed", "client", clientAddr(r))
		return schema.Token{}, errBadToken
	}
	ctx := r.Context()
	t, err := a.store.TokenByHash(ctx, hash)
	if errors.Is(err, schema.ErrNotFound) {
		a.log.Info("API token refused: unknown", "client", clientAddr(r))
		return t, errBadToken
	}
	if err != nil {
		return t, err
	}
	now := a.now()
	if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
		a.log.Info("API token refused: expired or revoked", "token_id", t.ID, "token", t.Name, "client", clientAddr(r))
		return t, errBadToken
	}
	if now.Sub(t.LastUsedAt) >= a.touchEvery {
		if err := a.store.TouchToken(ctx, t.ID, now); err != nil {
			return t, err
		}
	}
	return t, nil
}

func (a *Auth) kioskPage(w http.ResponseWriter, r *http.Request) {
	a.pages.render(w, r, http.StatusOK, "kiosk.html", page{Lang: Lang(w, r), Title: "kiosk", Script: "kiosk.js"})
}

// kiosk signs a display in with a token that has ScopeDashboardRead: a
// session cookie until the token expires, which shows only what that scope
// allows; revoking the token ends it.
func (a *Auth) kiosk(w http.ResponseWriter, r *http.Request) {
	p := page{Lang: Lang(nil, r), Title: "kiosk", Script: "kiosk.js"}
	if err := a.checkOrigin(r); err != nil {
		writeError(w, r, err)
		return
	}
	if err := readForm(w, r); err != nil {
		p.Msg = "bad_form"
		a.pages.render(w, r, http.StatusBadRequest, "kiosk.html", p)
		return
	}
	if !a.byAddr.allow(clientAddr(r), a.now()) {
		w.Header().Set("Retry-After", "60")
		p.Msg = "rate_limited"
		a.pages.render(w, r, http.StatusTooManyRequests, "kiosk.html", p)
		return
	}
	t, err := a.validToken(r, strings.TrimSpace(r.PostForm.Get("token")))
	if err == nil && !slices.Contains(t.Scopes, string(ScopeDashboardRead)) {
		a.log.Info("kiosk refused: token lacks "+string(ScopeDashboardRead), "token_id", t.ID, "client", clientAddr(r))
		err = errBadToken
	}
	if errors.Is(err, errBadToken) {
		p.Msg = "kiosk_refused"
		a.pages.render(w, r, http.StatusUnauthorized, "kiosk.html", p)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := a.startSession(r.Context(), w, r, 0, t.ID, t.ExpiresAt); err != nil {
		writeError(w, r, err)
		return
	}
	a.log.Info("kiosk signed in", "token_id", t.ID, "token", t.Name, "client", clientAddr(r))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
