// Package terminal is the station terminal (issue 13): a tablet page per
// station (/station/<ID>) showing the car in the station with its build
// and holds, and the forms through which people record their decisions —
// a defect from the line's catalogue, a repair at the rework station, an
// inspector's signed release, an andon pulled or cleared, a stop
// classified from the reason tree, a supervisor's manual hold and its
// release.
//
// Every decision becomes a human event (event.KindHuman) published on
// the station's subject, as an agent publishes a cycle, and the page says
// "saved" only once the tracker has committed it to the record: the
// handler waits until the event log holds its id. Each form is validated
// on the server, naming the field; each action's roles are enforced on
// the server (and the page hides the forms a user's roles do not allow).
//
// Mount it behind the web layer, which signs people in and checks CSRF:
//
//	term, err := terminal.New(terminal.Config{Line: lc, Record: auditorStore, Publisher: pub, Signer: auth})
//	term.Routes(mux) // a *web.Mux behind auth.Handler
package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
)

// Defaults of Config.
const (
	// CommitTimeoutDefault is how long a form waits for the tracker to
	// commit its decision before it answers that it is not yet saved.
	CommitTimeoutDefault = 10 * time.Second
	// CommitPollDefault is how often it looks.
	CommitPollDefault = 25 * time.Millisecond
	// PathPrefix is where the terminal pages are.
	PathPrefix = "/station/"
)

// Publisher makes a person's decision durable in the event stream
// (streams.Publisher: the JetStream publish is acknowledged).
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) error
}

// Signer re-authenticates the signed-in user for an electronic signature
// (web.Auth.Sign).
type Signer interface {
	Sign(r *http.Request, password, meaning string) (web.Signature, error)
}

// Config configures a Terminal.
type Config struct {
	// Line is the line config: its stations, defect catalogue, zones and
	// reason tree (the people: section). Required.
	Line *line.Config
	// Record is the record, read as schema.RoleAuditor: the car in a
	// station, its holds, and whether a decision is committed. Required.
	Record *schema.Store
	// Publisher publishes decisions (as broker.RoleWeb on a secured
	// NATS). Required.
	Publisher Publisher
	// Signer checks a release signature's password. Required.
	Signer Signer
	// CommitTimeout defaults to CommitTimeoutDefault.
	CommitTimeout time.Duration
	// CommitPoll defaults to CommitPollDefault.
	CommitPoll time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the decisions. Defaults to time.Now.
	Now func() time.Time
}

// Validate checks the config and fills its defaults; the error names the
// first bad field.
func (c *Config) Validate() error {
	switch {
	case c.Line == nil:
		return errors.New("terminal config: Line is required")
	case c.Record == nil:
		return errors.New("terminal config: Record is required (connected as " + schema.RoleAuditor + ")")
	case c.Publisher == nil:
		return errors.New("terminal config: Publisher is required")
	case c.Signer == nil:
		return errors.New("terminal config: Signer is required")
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = CommitTimeoutDefault
	}
	if c.CommitTimeout < 0 {
		return fmt.Errorf("terminal config: CommitTimeout %v: want more than 0 (default %v)", c.CommitTimeout, CommitTimeoutDefault)
	}
	if c.CommitPoll <= 0 {
		c.CommitPoll = CommitPollDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Terminal serves the station terminals. It starts no goroutine.
type Terminal struct {
	cfg  Config
	lc   *line.Config
	log  *slog.Logger
	page *pages
}

// New checks cfg and returns the terminal.
func New(cfg Config) (*Terminal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	return &Terminal{cfg: cfg, lc: cfg.Line, log: cfg.Logger.With("component", "terminal"), page: p}, nil
}

// An action is one form of the terminal: its name (the path after the
// station), the human action it records and the roles allowed to.
type action struct {
	name  string
	roles []web.Role
	do    func(t *Terminal, r *http.Request, st *line.Station, f *form) ([]*event.Event, error)
}

// actions are the terminal's forms; the roles are enforced on the server
// (Routes) and decide which forms the page shows.
var actions = []action{
	{"defect", []web.Role{web.Operator, web.TeamLeader, web.Supervisor, web.QualityInspector}, (*Terminal).defect},
	{"repair", []web.Role{web.Operator, web.TeamLeader, web.QualityInspector}, (*Terminal).repair},
	{"release", []web.Role{web.QualityInspector}, (*Terminal).release},
	{"andon", []web.Role{web.Operator, web.TeamLeader, web.Supervisor}, (*Terminal).andon},
	{"classify", []web.Role{web.Operator, web.TeamLeader, web.Supervisor}, (*Terminal).classify},
	{"hold", []web.Role{web.Supervisor}, (*Terminal).hold},
	{"unhold", []web.Role{web.Supervisor}, (*Terminal).unhold},
	{"correct", []web.Role{web.Operator, web.TeamLeader, web.Supervisor, web.QualityInspector}, (*Terminal).correct},
}

// Routes mounts the terminal on m: the page of each station for anyone
// signed in, each form for its roles.
func (t *Terminal) Routes(m *web.Mux) {
	m.HandleFunc("GET "+PathPrefix+"{station}", web.SignedIn, t.serve)
	m.HandleFunc("GET /terminal.css", web.SignedIn, t.page.css)
	for _, a := range actions {
		m.HandleFunc("POST "+PathPrefix+"{station}/"+a.name, web.Require(a.roles...), func(w http.ResponseWriter, r *http.Request) error {
			return t.submit(w, r, a)
		})
	}
}

// station returns the station of the request's path.
func (t *Terminal) station(r *http.Request) (*line.Station, error) {
	id := r.PathValue("station")
	st, ok := t.lc.Station(id)
	if !ok {
		return nil, web.NotFound("no station " + id + " on line " + t.lc.Line)
	}
	return st, nil
}

// roleFor is the role the user acts in: the first of the action's roles
// they have.
func roleFor(id *web.Identity, roles []web.Role) web.Role {
	for _, r := range roles {
		if slices.Contains(id.Roles, r) {
			return r
		}
	}
	return ""
}

// submit runs one form: validates it, publishes its decisions and waits
// until the record holds them, then sends the browser back to the page
// saying saved (303). A form with bad fields is shown again, 400, naming
// them; a decision the record has not confirmed is never called saved.
func (t *Terminal) submit(w http.ResponseWriter, r *http.Request, a action) error {
	st, err := t.station(r)
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return err // too large (413) or unreadable
	}
	id := web.IdentityFrom(r.Context())
	f := &form{values: r.PostForm, who: event.Human{UserID: id.UserID, User: id.User, Role: string(roleFor(id, a.roles))}, at: t.cfg.Now()}
	evs, err := a.do(t, r, st, f)
	if err != nil {
		return err
	}
	if len(f.errs) > 0 {
		return t.render(w, r, st, http.StatusBadRequest, a.name, f)
	}
	for _, ev := range evs {
		if err := ev.ValidateFor(t.lc.Identity); err != nil { // the tracker would dead-letter it
			return &web.Error{Status: http.StatusBadRequest, Msg: "not saved: " + err.Error()}
		}
	}
	if err := t.record(r.Context(), evs); err != nil {
		return err
	}
	for _, ev := range evs {
		t.log.Info("decision recorded", "event_id", ev.ID, "station", st.ID, "vin", ev.VIN, "user", id.User, "action", a.name)
	}
	http.Redirect(w, r, PathPrefix+st.ID+"?saved="+evs[len(evs)-1].ID, http.StatusSeeOther)
	return nil
}

// record publishes evs and waits until the record holds each of them.
func (t *Terminal) record(ctx context.Context, evs []*event.Event) error {
	for _, ev := range evs {
		if err := t.cfg.Publisher.Publish(ctx, ev); err != nil {
			return &web.Error{Status: http.StatusServiceUnavailable, Msg: "not saved: the event stream did not take the decision; try again",
				Err: fmt.Errorf("event %s: %w", ev.ID, err)}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.CommitTimeout)
	defer cancel()
	tick := time.NewTicker(t.cfg.CommitPoll)
	defer tick.Stop()
	for _, ev := range evs {
		for {
			ok, err := t.cfg.Record.HasEvent(ctx, ev.ID)
			if err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
				return &web.Error{Status: http.StatusGatewayTimeout,
					Msg: "not yet saved: the record has not confirmed decision " + ev.ID + "; it is queued and will be recorded, check the page before repeating it",
					Err: err}
			case <-tick.C:
			}
		}
	}
	return nil
}
