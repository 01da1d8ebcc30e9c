package schema_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

// openUsers opens a fresh database as its owner (who administers users)
// and as the web server's role.
func openUsers(t *testing.T) (owner, web *schema.Store, url string) {
	t.Helper()
	url = pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	web, err = schema.OpenAs(t.Context(), url, schema.RoleWeb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Close)
	return owner, web, url
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestUsersCreateListRolesDisable(t *testing.T) {
	owner, web, _ := openUsers(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "sato", DisplayName: "佐藤", PasswordHash: "$argon2id$x",
		Roles: []string{"supervisor", "operator"}, At: now})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Name != "sato" || u.DisplayName != "佐藤" || !slices.Equal(u.Roles, []string{"operator", "supervisor"}) ||
		!u.CreatedAt.Equal(now) || !u.PasswordChangedAt.Equal(now) || u.Disabled || !u.LastLoginAt.IsZero() {
		t.Fatalf("created %+v", u)
	}
	if _, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "sato", PasswordHash: "x", At: now}); !errors.Is(err, schema.ErrUserExists) {
		t.Errorf("second sato: %v, want ErrUserExists", err)
	}
	for _, bad := range []schema.NewUser{
		{Name: "Sato", PasswordHash: "x", At: now},
		{Name: "", PasswordHash: "x", At: now},
		{Name: "ito", PasswordHash: "x", Roles: []string{"boss"}, At: now},
	} {
		if _, err := owner.CreateUser(t.Context(), bad); err == nil {
			t.Errorf("create %+v: no error", bad)
		}
	}
	if n, err := owner.CountUsers(t.Context()); err != nil || n != 1 {
		t.Errorf("count = %d, %v; want 1 (refused users leave nothing)", n, err)
	}
	c, err := web.UserByName(t.Context(), "sato")
	if err != nil || c.PasswordHash != "$argon2id$x" || c.ID != u.ID {
		t.Fatalf("web reads sato: %+v, %v", c, err)
	}
	if _, err := web.UserByName(t.Context(), "nobody"); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if err := owner.SetUserRoles(t.Context(), "sato", []string{"planner"}); err != nil {
		t.Fatal(err)
	}
	if err := owner.SetUserRoles(t.Context(), "sato", []string{"boss"}); err == nil {
		t.Error("role boss accepted")
	}
	if err := owner.SetUserRoles(t.Context(), "nobody", []string{"planner"}); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("roles of nobody: %v", err)
	}
	sess := hashOf("s1")
	if err := web.CreateSession(t.Context(), schema.NewSession{Hash: sess, UserID: u.ID, Client: "10.0.0.1", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := owner.SetUserDisabled(t.Context(), "sato", true); err != nil {
		t.Fatal(err)
	}
	if _, err := web.Session(t.Context(), sess); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("a disabled user's session: %v, want it deleted", err)
	}
	users, err := owner.Users(t.Context())
	if err != nil || len(users) != 1 || !users[0].Disabled || !slices.Equal(users[0].Roles, []string{"planner"}) {
		t.Errorf("users = %+v, %v", users, err)
	}
	if err := owner.SetUserDisabled(t.Context(), "nobody", true); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("disable nobody: %v", err)
	}
}

func TestSessionsAndPasswordChange(t *testing.T) {
	owner, web, _ := openUsers(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "ito", PasswordHash: "old", Roles: []string{"operator"}, At: now})
	if err != nil {
		t.Fatal(err)
	}
	a, b := hashOf("a"), hashOf("b")
	for _, h := range [][]byte{a, b} {
		if err := web.CreateSession(t.Context(), schema.NewSession{Hash: h, UserID: u.ID, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := web.Session(t.Context(), a)
	if err != nil || s.User == nil || s.User.Name != "ito" || !slices.Equal(s.User.Roles, []string{"operator"}) || s.Token != nil ||
		!s.CreatedAt.Equal(now) || !s.LastSeenAt.Equal(now) {
		t.Fatalf("session = %+v, %v", s, err)
	}
	later := now.Add(time.Minute)
	if err := web.TouchSession(t.Context(), a, later); err != nil {
		t.Fatal(err)
	}
	if err := web.TouchSession(t.Context(), a, now); err != nil { // never moves back
		t.Fatal(err)
	}
	if s, _ := web.Session(t.Context(), a); !s.LastSeenAt.Equal(later) {
		t.Errorf("last seen %v, want %v", s.LastSeenAt, later)
	}
	// The web role changes a password: every session of the user ends.
	if err := web.SetPassword(t.Context(), u.ID, "new", later); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{a, b} {
		if _, err := web.Session(t.Context(), h); !errors.Is(err, schema.ErrNotFound) {
			t.Errorf("session after a password change: %v", err)
		}
	}
	if c, _ := web.UserByID(t.Context(), u.ID); c.PasswordHash != "new" || !c.PasswordChangedAt.Equal(later) {
		t.Errorf("after change: %+v", c)
	}
	if err := web.SetPassword(t.Context(), 999, "x", later); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("password of user 999: %v", err)
	}
	// Prune: idle and absolute.
	old, fresh := hashOf("old"), hashOf("fresh")
	web.CreateSession(t.Context(), schema.NewSession{Hash: old, UserID: u.ID, At: now.Add(-2 * time.Hour)})
	web.CreateSession(t.Context(), schema.NewSession{Hash: fresh, UserID: u.ID, At: now})
	if n, err := web.PruneSessions(t.Context(), now.Add(-time.Hour), now.Add(-24*time.Hour), now); err != nil || n != 1 {
		t.Errorf("prune = %d, %v; want the idle one", n, err)
	}
	if _, err := web.Session(t.Context(), fresh); err != nil {
		t.Errorf("fresh session pruned: %v", err)
	}
}

func TestLoginFailuresLock(t *testing.T) {
	owner, web, _ := openUsers(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "kato", PasswordHash: "h", At: now})
	if err != nil {
		t.Fatal(err)
	}
	const threshold, lockFor = 3, 15 * time.Minute
	for i := 1; i <= threshold; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		until, err := web.RecordLoginFailure(t.Context(), schema.LoginFailure{At: at, UserID: u.ID, Client: "10.0.0.9",
			Kind: schema.FailureLogin, Reason: schema.ReasonWrongPassword}, threshold, lockFor)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == threshold; !until.IsZero() != want {
			t.Fatalf("failure %d: locked until %v, want locked %t", i, until, want)
		}
		if i == threshold && !until.Equal(at.Add(lockFor)) {
			t.Errorf("locked until %v, want %v", until, at.Add(lockFor))
		}
	}
	c, _ := web.UserByID(t.Context(), u.ID)
	if c.FailedLogins != 0 || c.LockedUntil.IsZero() {
		t.Errorf("after the lock: failed %d, locked until %v", c.FailedLogins, c.LockedUntil)
	}
	// An unknown name is recorded without a user; it locks nobody.
	if _, err := web.RecordLoginFailure(t.Context(), schema.LoginFailure{At: now, Client: "10.0.0.9", Kind: schema.FailureLogin,
		Reason: schema.ReasonUnknownUser}, threshold, lockFor); err != nil {
		t.Fatal(err)
	}
	web.RecordLoginFailure(t.Context(), schema.LoginFailure{At: now, UserID: u.ID, Kind: schema.FailureLogin, Reason: schema.ReasonWrongPassword}, threshold, lockFor)
	if err := web.RecordLogin(t.Context(), u.ID, now); err != nil {
		t.Fatal(err)
	}
	if c, _ := web.UserByID(t.Context(), u.ID); c.FailedLogins != 0 || !c.LastLoginAt.Equal(now) {
		t.Errorf("after a sign-in: failed %d, last login %v", c.FailedLogins, c.LastLoginAt)
	}
	fs, err := owner.LoginFailures(t.Context(), now.Add(-time.Hour), 100)
	if err != nil || len(fs) != threshold+2 {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
	if fs[0].UserID != 0 || fs[0].Reason != schema.ReasonUnknownUser {
		t.Errorf("first failure %+v, want the unknown name", fs[0])
	}
	if n, err := web.PruneLoginFailures(t.Context(), now.Add(time.Second)); err != nil || n != 2 {
		t.Errorf("prune failures = %d, %v; want 2", n, err)
	}
}

func TestTokensAndKioskSessions(t *testing.T) {
	owner, web, _ := openUsers(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tok, err := owner.CreateToken(t.Context(), schema.NewToken{Hash: hashOf("tv"), Name: "line TV", Scopes: []string{"dashboard:read"},
		CreatedBy: "cli", At: now, ExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := web.TokenByHash(t.Context(), hashOf("tv"))
	if err != nil || got.ID != tok.ID || got.Name != "line TV" || !slices.Equal(got.Scopes, []string{"dashboard:read"}) || !got.RevokedAt.IsZero() {
		t.Fatalf("token = %+v, %v", got, err)
	}
	if _, err := web.TokenByHash(t.Context(), hashOf("other")); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	if err := web.TouchToken(t.Context(), tok.ID, now); err != nil {
		t.Fatal(err)
	}
	kiosk := hashOf("kiosk")
	if err := web.CreateSession(t.Context(), schema.NewSession{Hash: kiosk, TokenID: tok.ID, At: now}); err != nil {
		t.Fatal(err)
	}
	s, err := web.Session(t.Context(), kiosk)
	if err != nil || s.User != nil || s.Token == nil || s.Token.ID != tok.ID || !slices.Equal(s.Token.Scopes, []string{"dashboard:read"}) ||
		!s.Token.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("kiosk session = %+v, %v", s, err)
	}
	if err := owner.RevokeToken(t.Context(), tok.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := owner.RevokeToken(t.Context(), tok.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := web.Session(t.Context(), kiosk); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("kiosk session of a revoked token: %v", err)
	}
	list, err := owner.Tokens(t.Context())
	if err != nil || len(list) != 1 || !list[0].RevokedAt.Equal(now) || !list[0].LastUsedAt.Equal(now) {
		t.Errorf("tokens = %+v, %v", list, err)
	}
	if err := owner.RevokeToken(t.Context(), 999, now); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("revoke 999: %v", err)
	}
	if _, err := owner.CreateToken(t.Context(), schema.NewToken{Hash: hashOf("x"), Name: "none", CreatedBy: "cli", At: now, ExpiresAt: now}); err == nil {
		t.Error("a token without scopes was stored")
	}
}

// TestUserTablesPrivileges: the auditor reads who is who but no secret;
// the web role keeps sessions but administers nothing and reads no record;
// the writer sees nothing of the users.
func TestUserTablesPrivileges(t *testing.T) {
	owner, web, url := openUsers(t)
	now := time.Now().UTC()
	if _, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "ito", PasswordHash: "h", Roles: []string{"operator"}, At: now}); err != nil {
		t.Fatal(err)
	}
	auditor, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	writer, err := schema.OpenAs(t.Context(), url, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	cases := []struct {
		name  string
		store *schema.Store
		sql   string
		ok    bool
	}{
		{"auditor reads names and roles", auditor, `SELECT u.name, r.role FROM users u JOIN user_roles r USING (user_id)`, true},
		{"auditor reads failures", auditor, `SELECT * FROM login_failures`, true},
		{"auditor reads token names", auditor, `SELECT name, scopes, revoked_at FROM api_tokens`, true},
		{"auditor reads no password hash", auditor, `SELECT password_hash FROM users`, false},
		{"auditor reads no token hash", auditor, `SELECT token_hash FROM api_tokens`, false},
		{"auditor reads no session", auditor, `SELECT session_hash FROM sessions`, false},
		{"writer reads no users", writer, `SELECT name FROM users`, false},
		{"writer reads no sessions", writer, `SELECT 1 FROM sessions`, false},
		{"web creates no user", web, `INSERT INTO users (name, password_hash, password_changed_at, created_at) VALUES ('x', 'h', now(), now())`, false},
		{"web grants no role", web, `INSERT INTO user_roles SELECT user_id, 'admin' FROM users`, false},
		{"web enables no one", web, `UPDATE users SET disabled = false`, false},
		{"web renames no one", web, `UPDATE users SET name = 'boss'`, false},
		{"web mints no token", web, `INSERT INTO api_tokens (token_hash, name, scopes, created_by, created_at, expires_at) VALUES (sha256('x'), 'x', '{orders:write}', 'x', now(), now())`, false},
		{"web revokes no token", web, `UPDATE api_tokens SET revoked_at = now()`, false},
		{"web widens no token", web, `UPDATE api_tokens SET scopes = '{orders:write}'`, false},
		{"web reads no record", web, `SELECT 1 FROM event_log`, false},
		{"web reads no orders", web, `SELECT 1 FROM orders`, false},
		{"web deletes no user", web, `DELETE FROM users`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.store.Pool().Exec(t.Context(), c.sql)
			if c.ok {
				if err != nil {
					t.Errorf("%s: %v", c.sql, err)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("%s: err = %v, want insufficient_privilege (42501)", c.sql, err)
			}
		})
	}
}

func TestSessionKeyMustBeSHA256(t *testing.T) {
	owner, web, _ := openUsers(t)
	now := time.Now().UTC()
	u, err := owner.CreateUser(t.Context(), schema.NewUser{Name: "ito", PasswordHash: "h", At: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := web.CreateSession(t.Context(), schema.NewSession{Hash: []byte("short"), UserID: u.ID, At: now}); err == nil {
		t.Error("a session key that is not a sha256 was stored")
	}
	h := hashOf("id")
	if err := web.CreateSession(t.Context(), schema.NewSession{Hash: h, UserID: u.ID, At: now}); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := owner.Pool().QueryRow(t.Context(), `SELECT session_hash FROM sessions`).Scan(&stored); err != nil || !bytes.Equal(stored, h) {
		t.Errorf("stored %x, %v", stored, err)
	}
}
