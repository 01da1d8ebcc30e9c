package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Role is what a person may do. A user may have several roles; admin
// administers users and tokens and grants no other role's rights.
type Role string

// The roles (DESIGN.md, "Who uses it"). The database's user_roles table
// allows exactly these.
const (
	Operator         Role = "operator"
	TeamLeader       Role = "team_leader"
	Supervisor       Role = "supervisor"
	QualityInspector Role = "quality_inspector"
	Planner          Role = "planner"
	Auditor          Role = "auditor"
	Admin            Role = "admin"
)

// Roles are every role, in the order pages list them.
var Roles = []Role{Operator, TeamLeader, Supervisor, QualityInspector, Planner, Auditor, Admin}

// Scope is what an API token may do.
type Scope string

// The scopes of API tokens.
const (
	// ScopeOrdersWrite imports and cancels orders (an ERP's orders import).
	ScopeOrdersWrite Scope = "orders:write"
	// ScopeOrdersRead lists orders.
	ScopeOrdersRead Scope = "orders:read"
	// ScopeDashboardRead shows the dashboard read-only (a line-side TV in
	// kiosk mode).
	ScopeDashboardRead Scope = "dashboard:read"
	// ScopeTraceRead asks the trace questions.
	ScopeTraceRead Scope = "trace:read"
)

// Scopes are every scope.
var Scopes = []Scope{ScopeOrdersWrite, ScopeOrdersRead, ScopeDashboardRead, ScopeTraceRead}

// kioskScopes are the scopes a kiosk session may carry: read-only ones.
var kioskScopes = []Scope{ScopeDashboardRead}

// ParseRoles returns names as roles, sorted and without repeats. An unknown
// name is an error listing the allowed ones.
func ParseRoles(names []string) ([]Role, error) {
	return parseNames(names, Roles, "role")
}

// ParseScopes returns names as scopes, sorted and without repeats. An
// unknown name is an error listing the allowed ones.
func ParseScopes(names []string) ([]Scope, error) {
	return parseNames(names, Scopes, "scope")
}

func parseNames[T ~string](names []string, allowed []T, what string) ([]T, error) {
	var out []T
	for _, n := range names {
		v := T(strings.TrimSpace(n))
		if !slices.Contains(allowed, v) {
			all := make([]string, len(allowed))
			for i, a := range allowed {
				all[i] = string(a)
			}
			return nil, fmt.Errorf("%s %q is not one of %s", what, n, strings.Join(all, ", "))
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, nil
}

func toStrings[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// Kind says what an Identity is.
type Kind string

// The kinds of identity.
const (
	// KindUser is a person signed in with a session.
	KindUser Kind = "user"
	// KindToken is a machine client with an API token in the
	// Authorization header.
	KindToken Kind = "token"
	// KindKiosk is a browser signed in with an API token's read-only
	// scopes (a line-side TV).
	KindKiosk Kind = "kiosk"
)

// Identity is who made a request, as handlers and the record see it.
type Identity struct {
	Kind Kind
	// UserID, User, DisplayName and Roles are set for KindUser.
	UserID      int64
	User        string
	DisplayName string
	Roles       []Role
	// TokenID, TokenName and Scopes are set for KindToken and KindKiosk.
	TokenID   int64
	TokenName string
	Scopes    []Scope

	// session is the hash of the session id (KindUser, KindKiosk).
	session []byte
	// csrf is the session's CSRF token.
	csrf string
}

// HasRole reports whether id is a user with any of roles.
func (id *Identity) HasRole(roles ...Role) bool {
	if id == nil || id.Kind != KindUser {
		return false
	}
	for _, r := range roles {
		if slices.Contains(id.Roles, r) {
			return true
		}
	}
	return false
}

// HasScope reports whether id is a token or kiosk with any of scopes.
func (id *Identity) HasScope(scopes ...Scope) bool {
	if id == nil || id.Kind == KindUser {
		return false
	}
	for _, s := range scopes {
		if slices.Contains(id.Scopes, s) {
			return true
		}
	}
	return false
}

// String names id for the record and the log: "user sato", "token 7
// (erp-orders)", "kiosk token 9 (line TV)".
func (id *Identity) String() string {
	switch {
	case id == nil:
		return "anonymous"
	case id.Kind == KindUser:
		return "user " + id.User
	case id.Kind == KindKiosk:
		return "kiosk token " + strconv.FormatInt(id.TokenID, 10) + " (" + id.TokenName + ")"
	}
	return "token " + strconv.FormatInt(id.TokenID, 10) + " (" + id.TokenName + ")"
}

type identityKey struct{}

// IdentityFrom returns who made the request of ctx, or nil for an
// anonymous request.
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

func withIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// CSRFToken returns the CSRF token of the request's session, for a page's
// <meta name="csrf-token"> or a form's csrf_token field; "" without a
// session.
func CSRFToken(r *http.Request) string {
	if id := IdentityFrom(r.Context()); id != nil {
		return id.csrf
	}
	return ""
}

// Policy says who may use a route: anyone (Public), any signed-in person
// (SignedIn), people with one of some roles (Require), machines with one
// of some scopes (RequireScope), or both (Require(...).OrScope(...)). An
// API token passes only a policy that names one of its scopes.
type Policy struct {
	public  bool
	anyUser bool
	roles   []Role
	scopes  []Scope
	bodyMax int64
}

// Public lets anyone through: only for what shows no record data
// (/healthz, /metrics with counts only, static assets).
var Public = Policy{public: true}

// SignedIn lets any signed-in person through, whatever their roles.
var SignedIn = Policy{anyUser: true}

// Require lets through people with any of roles; with no roles it is
// SignedIn.
func Require(roles ...Role) Policy {
	if len(roles) == 0 {
		return SignedIn
	}
	return Policy{roles: slices.Clone(roles)}
}

// RequireScope lets through API tokens (and kiosks) with any of scopes.
func RequireScope(scopes ...Scope) Policy {
	return Policy{scopes: slices.Clone(scopes)}
}

// OrScope returns p that also lets through tokens with any of scopes.
func (p Policy) OrScope(scopes ...Scope) Policy {
	p.scopes = append(slices.Clone(p.scopes), scopes...)
	return p
}

// WithBodyMax returns p whose route takes request bodies up to n bytes
// instead of Config.BodyMax (an orders upload).
func (p Policy) WithBodyMax(n int64) Policy {
	p.bodyMax = n
	return p
}

// Check returns nil when id may pass, ErrUnauthenticated when id is nil
// and p is not Public, and ErrForbidden otherwise.
func (p Policy) Check(id *Identity) error {
	switch {
	case p.public:
		return nil
	case id == nil:
		return ErrUnauthenticated
	case id.Kind == KindUser && (p.anyUser || id.HasRole(p.roles...)):
		return nil
	case id.Kind != KindUser && id.HasScope(p.scopes...):
		return nil
	}
	return ErrForbidden
}

// Wrap returns h behind p: a request p refuses is answered 401 (no
// identity) or 403 (the wrong role or scope) and never reaches h.
func (p Policy) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Check(IdentityFrom(r.Context())); err != nil {
			writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}
