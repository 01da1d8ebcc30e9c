package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/terminal"
	"github.com/keiline/keiline/web"
	"github.com/nats-io/nats.go/jetstream"
)

// people is the web side of a line for people (issue 13): sign-in, roles
// and CSRF (web.Auth) in front of the dashboard, and the station
// terminals beside it on the same origin, publishing people's decisions
// as the line's web part.
type people struct {
	auth *web.Auth
	term *terminal.Terminal
	// firstAdmin is the file with the first admin's password when this
	// start made it, else "".
	firstAdmin string
}

// startPeople opens the users' database as schema.RoleWeb, makes the
// first admin when there is no user (its password in a file of dir), and
// makes the terminals of lc on the record view (schema.RoleAuditor),
// publishing on js (the web part's connection). Closers go to onClose.
func startPeople(ctx context.Context, dbURL, dir string, lc *line.Config, view *schema.Store, js jetstream.JetStream, log *slog.Logger,
	onClose func(func(context.Context))) (*people, error) {
	owner, err := schema.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	first, err := web.FirstAdmin(ctx, owner, dir, time.Now())
	owner.Close()
	if err != nil {
		return nil, err
	}
	users, err := schema.OpenRole(ctx, dbURL, schema.RoleWeb)
	if err != nil {
		return nil, err
	}
	onClose(func(context.Context) { users.Close() })
	auth, err := web.New(web.Config{Store: users, Logger: log})
	if err != nil {
		return nil, err
	}
	term, err := terminal.New(terminal.Config{Line: lc, Record: view, Publisher: streams.NewPublisher(js), Signer: auth, Logger: log})
	if err != nil {
		return nil, err
	}
	return &people{auth: auth, term: term, firstAdmin: first}, nil
}

// front is the dashboard's Front: every page and API for people signed
// in (or a display's kiosk token), the orders API for planners and
// tokens with an orders scope, /metrics and /healthz for anyone (counts,
// never record data), and the station terminals.
func (p *people) front(dash http.Handler) http.Handler {
	m := web.NewMux()
	m.Handle("/", web.SignedIn.OrScope(web.ScopeDashboardRead), dash)
	m.Handle("GET /metrics", web.Public, dash)
	m.Handle("GET /healthz", web.Public, dash)
	orders := web.Require(web.Planner).OrScope(web.ScopeOrdersWrite, web.ScopeOrdersRead)
	m.Handle("/api/orders", orders, dash)
	m.Handle("/api/orders/", orders, dash)
	p.term.Routes(m)
	return p.auth.Handler(m)
}

// signInHint tells the operator how to sign in at url.
func (p *people) signInHint(url string) string {
	if p.firstAdmin == "" {
		return fmt.Sprintf("sign in at %slogin (users: keiline users add NAME --roles operator,...)", url)
	}
	return fmt.Sprintf("sign in at %slogin as %s; the password is in %s (add people with keiline users add NAME --roles operator,...)",
		url, web.FirstAdminName, p.firstAdmin)
}
