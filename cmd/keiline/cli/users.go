package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
)

var usersUsage = `keiline users|tokens — who may sign in to the web side, and the API tokens of machines

  users add NAME --roles R[,R…] [--display "Sato Hanako"]   create a user
  users list [--json]                                       every user, its roles and state
  users disable NAME | users enable NAME                    a disabled user's sessions end at once
  users passwd NAME                                         set a new password (ends the user's sessions)
  users roles NAME R[,R…]                                   replace the user's roles
  tokens add NAME --scopes S[,S…] [--lifetime 90d]          create an API token; it is printed once, only its hash is kept
  tokens list [--json]                                      every token (never the token itself)
  tokens revoke ID…                                         revoke tokens (and the displays signed in with them)

Roles: ` + joinNames(web.Roles) + `
Scopes: ` + joinNames(web.Scopes) + `

A password is read from --password-file FILE (its first line), else from the
environment variable KEILINE_PASSWORD, else asked twice on the terminal; never
from the command line. The database is the one of --state DIR (default
.keiline) or --db URL, as its owner: the web server's own role cannot
administer users.
`

// envPassword names the environment variable a password may come from.
const envPassword = "KEILINE_PASSWORD"

// day is the unit --lifetime takes besides Go durations.
const day = 24 * time.Hour

func joinNames[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// runAccounts is keiline users … and keiline tokens ….
func runAccounts(ctx context.Context, cmd string, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usersUsage)
		if len(args) == 0 {
			return fmt.Errorf("%s: give a command (see above)", cmd)
		}
		return nil
	}
	a := accounts{out: os.Stdout, in: os.Stdin, env: os.Getenv}
	sub, rest := args[0], args[1:]
	switch cmd + " " + sub {
	case "users add":
		return a.usersAdd(ctx, rest)
	case "users list":
		return a.usersList(ctx, rest)
	case "users disable", "users enable":
		return a.usersDisable(ctx, sub, rest)
	case "users passwd":
		return a.usersPasswd(ctx, rest)
	case "users roles":
		return a.usersRoles(ctx, rest)
	case "tokens add":
		return a.tokensAdd(ctx, rest)
	case "tokens list":
		return a.tokensList(ctx, rest)
	case "tokens revoke":
		return a.tokensRevoke(ctx, rest)
	}
	fmt.Fprint(os.Stderr, usersUsage)
	return fmt.Errorf("%s: unknown command %q", cmd, sub)
}

// accounts runs the users and tokens commands with its own input, output
// and environment (tests give theirs).
type accounts struct {
	out io.Writer
	in  *os.File
	env func(string) string
}

// ownerStore opens the record as its owner (migrating it), and returns how
// to close it.
func ownerStore(ctx context.Context, f ordersDBFlags) (*schema.Store, func(), error) {
	state := *f.state
	if state == "" && *f.db == "" {
		state = StateDirDefault
	}
	db, err := openDatabase(ctx, *f.db, state, toolLogger())
	if err != nil {
		return nil, nil, err
	}
	store, err := schema.Open(ctx, db.URL)
	if err != nil {
		db.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return store, func() { store.Close(); db.Close(context.WithoutCancel(ctx)) }, nil
}

// password reads a password: --password-file, else KEILINE_PASSWORD, else
// twice from the terminal.
func (a accounts) password(file, prompt string) (string, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		line, err := bufio.NewReader(io.LimitReader(f, web.PasswordMaxBytes+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("--password-file %s: %w", file, err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if pw := a.env(envPassword); pw != "" {
		return pw, nil
	}
	fd := int(a.in.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("no password: give --password-file FILE or set %s (standard input is not a terminal to ask on)", envPassword)
	}
	var pws [2]string
	for i, p := range []string{prompt + ": ", "again: "} {
		fmt.Fprint(os.Stderr, p)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		pws[i] = string(b)
	}
	if pws[0] != pws[1] {
		return "", errors.New("the two passwords differ")
	}
	return pws[0], nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (a accounts) usersAdd(ctx context.Context, args []string) error {
	fs := newFlags("users add")
	roles := fs.String("roles", "", "the user's roles, comma-separated")
	display := fs.String("display", "", "the name pages show")
	pwFile := fs.String("password-file", "", "read the password from this file's first line")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("users add: give one user name")
	}
	rs, err := web.ParseRoles(splitList(*roles))
	if err != nil {
		return fmt.Errorf("users add %s: --roles: %w", pos[0], err)
	}
	if len(rs) == 0 {
		return fmt.Errorf("users add %s: give its roles with --roles (%s)", pos[0], joinNames(web.Roles))
	}
	if err := web.CheckUserName(pos[0]); err != nil {
		return err
	}
	pw, err := a.password(*pwFile, "password for "+pos[0])
	if err != nil {
		return err
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	u, err := web.CreateUser(ctx, store, web.NewUser{Name: pos[0], DisplayName: *display, Password: pw, Roles: rs}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "created user %s (%s)\n", u.Name, strings.Join(u.Roles, ", "))
	return nil
}

func (a accounts) usersList(ctx context.Context, args []string) error {
	fs := newFlags("users list")
	asJSON := fs.Bool("json", false, "one JSON object per user and line")
	dbf := newOrdersDBFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	users, err := store.Users(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.out)
		for _, u := range users {
			if err := enc.Encode(map[string]any{"name": u.Name, "display_name": u.DisplayName, "roles": u.Roles, "disabled": u.Disabled,
				"locked_until": timeOrNil(u.LockedUntil), "last_login_at": timeOrNil(u.LastLoginAt), "created_at": u.CreatedAt}); err != nil {
				return err
			}
		}
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDISPLAY\tROLES\tSTATE\tLAST SIGN-IN")
	for _, u := range users {
		state := "active"
		switch {
		case u.Disabled:
			state = "disabled"
		case now.Before(u.LockedUntil):
			state = "locked until " + u.LockedUntil.Local().Format("15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, dash(u.DisplayName), dash(strings.Join(u.Roles, ",")), state, when(u.LastLoginAt))
	}
	return tw.Flush()
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func (a accounts) usersDisable(ctx context.Context, sub string, args []string) error {
	fs := newFlags("users " + sub)
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("users %s: give one user name", sub)
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	if err := store.SetUserDisabled(ctx, pos[0], sub == "disable"); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%sd user %s\n", sub, pos[0])
	return nil
}

func (a accounts) usersPasswd(ctx context.Context, args []string) error {
	fs := newFlags("users passwd")
	pwFile := fs.String("password-file", "", "read the password from this file's first line")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("users passwd: give one user name")
	}
	pw, err := a.password(*pwFile, "new password for "+pos[0])
	if err != nil {
		return err
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	if err := web.SetPassword(ctx, store, pos[0], pw, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "set the password of %s; its sessions have ended\n", pos[0])
	return nil
}

func (a accounts) usersRoles(ctx context.Context, args []string) error {
	fs := newFlags("users roles")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return errors.New("users roles: give a user name and its roles (comma-separated)")
	}
	rs, err := web.ParseRoles(splitList(strings.Join(pos[1:], ",")))
	if err != nil {
		return fmt.Errorf("users roles %s: %w", pos[0], err)
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	if err := store.SetUserRoles(ctx, pos[0], names); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "user %s: %s\n", pos[0], strings.Join(names, ", "))
	return nil
}

// parseLifetime reads --lifetime: a Go duration or whole days (90d).
func parseLifetime(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--lifetime %q: want whole days (90d) or a duration (720h)", s)
		}
		return time.Duration(n) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--lifetime %q: want whole days (90d) or a duration (720h)", s)
	}
	return d, nil
}

func (a accounts) tokensAdd(ctx context.Context, args []string) error {
	fs := newFlags("tokens add")
	scopes := fs.String("scopes", "", "the token's scopes, comma-separated")
	lifetime := fs.String("lifetime", strconv.Itoa(int(web.TokenLifetimeDefault/day))+"d", "how long the token lives (at most "+
		strconv.Itoa(int(web.TokenLifetimeMax/day))+"d)")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("tokens add: give one token name (what uses it: erp-orders, line-tv-1)")
	}
	sc, err := web.ParseScopes(splitList(*scopes))
	if err != nil {
		return fmt.Errorf("tokens add %s: --scopes: %w", pos[0], err)
	}
	life, err := parseLifetime(*lifetime)
	if err != nil {
		return err
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	by := "cli"
	if u, err := user.Current(); err == nil {
		by = "cli " + u.Username
	}
	tok, t, err := web.CreateToken(ctx, store, web.NewAPIToken{Name: pos[0], Scopes: sc, Lifetime: life, CreatedBy: by}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "token %d %q (%s), expires %s — shown this once, keep it secret:\n%s\n",
		t.ID, t.Name, strings.Join(t.Scopes, ", "), t.ExpiresAt.Local().Format("2006-01-02 15:04"), tok)
	return nil
}

func (a accounts) tokensList(ctx context.Context, args []string) error {
	fs := newFlags("tokens list")
	asJSON := fs.Bool("json", false, "one JSON object per token and line")
	dbf := newOrdersDBFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	toks, err := store.Tokens(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.out)
		for _, t := range toks {
			if err := enc.Encode(map[string]any{"id": t.ID, "name": t.Name, "scopes": t.Scopes, "created_by": t.CreatedBy, "created_at": t.CreatedAt,
				"expires_at": t.ExpiresAt, "revoked_at": timeOrNil(t.RevokedAt), "last_used_at": timeOrNil(t.LastUsedAt)}); err != nil {
				return err
			}
		}
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tSTATE\tEXPIRES\tLAST USED\tBY")
	for _, t := range toks {
		state := "valid"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked"
		case !now.Before(t.ExpiresAt):
			state = "expired"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), state, when(t.ExpiresAt), when(t.LastUsedAt), t.CreatedBy)
	}
	return tw.Flush()
}

func (a accounts) tokensRevoke(ctx context.Context, args []string) error {
	fs := newFlags("tokens revoke")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("tokens revoke: give one or more token ids (keiline tokens list)")
	}
	ids := make([]int64, len(pos))
	for i, p := range pos {
		if ids[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return fmt.Errorf("tokens revoke: %q is not a token id", p)
		}
	}
	store, done, err := ownerStore(ctx, dbf)
	if err != nil {
		return err
	}
	defer done()
	var errs []error
	for _, id := range ids {
		if err := store.RevokeToken(ctx, id, time.Now()); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(a.out, "revoked token %d\n", id)
	}
	return errors.Join(errs...)
}
