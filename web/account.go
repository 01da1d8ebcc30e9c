package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keiline/keiline/schema"
)

// SignatureMeaningMax is the longest meaning text a signature takes.
const SignatureMeaningMax = 500

// ErrSignatureRefused is wrapped by Sign's error when the password is
// wrong or the user is locked out.
var ErrSignatureRefused = errors.New("signature refused")

// Signature is a signed-in user's re-authenticated consent to Meaning
// (21 CFR 11.50: who, when, and what the signature means), to record with
// the decision it signs.
type Signature struct {
	UserID      int64
	User        string
	DisplayName string
	Roles       []Role
	// Meaning is the text the user signed, as given ("released after
	// rework: torque rechecked").
	Meaning string
	At      time.Time
}

// Sign re-authenticates the signed-in user of r for an electronic
// signature: password must be theirs. It returns the signature to record
// with meaning. Wrong passwords count toward the same lockout as sign-in;
// a locked user cannot sign.
//
// Errors (all *Error, answerable with the status they carry): 401 without
// a user session (a token or kiosk cannot sign), 400 for an empty or too
// long meaning, 429 when rate limited, 403 wrapping ErrSignatureRefused
// for a wrong password or a lock; or the store's error.
func (a *Auth) Sign(r *http.Request, password, meaning string) (Signature, error) {
	id := IdentityFrom(r.Context())
	if id == nil || id.Kind != KindUser {
		return Signature{}, ErrUnauthenticated
	}
	meaning = strings.TrimSpace(meaning)
	if meaning == "" || utf8.RuneCountInString(meaning) > SignatureMeaningMax || !utf8.ValidString(meaning) {
		return Signature{}, BadRequest("a signature needs its meaning: 1 to %d characters", SignatureMeaningMax)
	}
	c, err := a.verify(r.Context(), attempt{name: id.User, password: password, client: clientAddr(r), kind: schema.FailureSignature})
	switch {
	case errors.Is(err, errRefused):
		return Signature{}, &Error{Status: http.StatusForbidden, Msg: "signature refused: wrong password, or too many wrong passwords for now",
			Err: ErrSignatureRefused}
	case err != nil:
		return Signature{}, err
	case c.ID != id.UserID: // the session's user was renamed and the name reused
		return Signature{}, &Error{Status: http.StatusForbidden, Msg: "signature refused: sign in again", Err: ErrSignatureRefused}
	}
	sig := Signature{UserID: c.ID, User: c.Name, DisplayName: c.DisplayName, Meaning: meaning, At: a.now()}
	for _, role := range c.Roles {
		sig.Roles = append(sig.Roles, Role(role))
	}
	a.log.Info("signature", "user", c.Name, "client", clientAddr(r))
	return sig, nil
}

func (a *Auth) passwordPage(w http.ResponseWriter, r *http.Request) {
	id, err := a.sessionFor(w, r)
	if err == nil && id.Kind != KindUser {
		err = ErrForbidden
	}
	if errors.Is(err, ErrUnauthenticated) {
		unauthenticated(w, r)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.pages.render(w, r, http.StatusOK, "password.html", page{Lang: Lang(w, r), Title: "change_password", CSRF: id.csrf, Who: id.User})
}

// changePassword changes the signed-in user's own password: the current
// one re-entered (counting toward the lockout), the new one twice and by
// the policy. Every session of the user ends; this browser gets a new one.
func (a *Auth) changePassword(w http.ResponseWriter, r *http.Request) {
	id, err := a.sessionFor(w, r)
	if err == nil && id.Kind != KindUser {
		err = ErrForbidden
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := readForm(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	p := page{Lang: Lang(nil, r), Title: "change_password", CSRF: id.csrf, Who: id.User}
	cur, next, confirm := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("confirm")
	if next != confirm {
		p.Msg = "password_mismatch"
		a.pages.render(w, r, http.StatusBadRequest, "password.html", p)
		return
	}
	weak := CheckPassword(id.User, next)
	if weak == nil && next == cur {
		weak = fmt.Errorf("%w: it is the current password", ErrWeakPassword)
	}
	if weak != nil {
		p.Msg, p.Detail = "password_weak", strings.TrimPrefix(weak.Error(), ErrWeakPassword.Error()+": ")
		a.pages.render(w, r, http.StatusBadRequest, "password.html", p)
		return
	}
	c, err := a.verify(r.Context(), attempt{name: id.User, password: cur, client: clientAddr(r), kind: schema.FailurePasswordChange})
	switch {
	case errors.Is(err, errRefused), errors.Is(err, errRateLimited), err == nil && c.ID != id.UserID:
		p.Msg = "password_refused"
		a.pages.render(w, r, http.StatusForbidden, "password.html", p)
		return
	case err != nil:
		writeError(w, r, err)
		return
	}
	var hash string
	if herr := a.hasher.do(r.Context(), func() { hash, err = HashPassword(next) }); herr != nil {
		writeError(w, r, herr)
		return
	}
	if err == nil {
		err = a.store.SetPassword(r.Context(), c.ID, hash, a.now())
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	fresh, err := a.startSession(r.Context(), w, r, c.ID, 0, time.Time{})
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.log.Info("password changed; the user's other sessions ended", "user", c.Name, "client", clientAddr(r))
	p.Msg, p.OK, p.CSRF = "password_changed", true, fresh.csrf
	a.pages.render(w, r, http.StatusOK, "password.html", p)
}
