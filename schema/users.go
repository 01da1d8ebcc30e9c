package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The web side's people and machines (migration 00010): users and their
// roles, sessions, API tokens and failed sign-ins. The rules — password
// hashing, expiry, lockout, which role may do what — are package web's;
// these are only the queries. Times come from the caller's clock, never
// from the database's, so a test's clock decides expiry.

// RoleWeb is the database role the web server connects as: it reads users
// and tokens, keeps sessions and failed sign-ins, and may change a
// password; it cannot create users, change roles, mint tokens or touch the
// record. Administration (CreateUser, SetUserRoles, SetUserDisabled,
// CreateToken, RevokeToken) needs the schema's owner.
const RoleWeb = "keiline_web"

// ErrUserExists is returned by CreateUser when the name is taken.
var ErrUserExists = errors.New("user already exists")

// Login failure kinds and reasons (the login_failures columns).
const (
	FailureLogin          = "login"
	FailureSignature      = "signature"
	FailurePasswordChange = "password_change"

	ReasonWrongPassword = "wrong_password"
	ReasonUnknownUser   = "unknown_user"
	ReasonLocked        = "locked"
	ReasonDisabled      = "disabled"
)

// User is a person who signs in, without the password hash.
type User struct {
	ID          int64
	Name        string
	DisplayName string
	// Roles are sorted.
	Roles             []string
	Disabled          bool
	PasswordChangedAt time.Time
	// FailedLogins counts wrong passwords since the last sign-in or lock.
	FailedLogins int
	// LockedUntil is zero when the user was never locked.
	LockedUntil time.Time
	// LastLoginAt is zero when the user never signed in.
	LastLoginAt time.Time
	CreatedAt   time.Time
}

// Credentials is a user with the password hash, for checking a password.
type Credentials struct {
	User
	PasswordHash string
}

// NewUser is a user to create.
type NewUser struct {
	Name, DisplayName, PasswordHash string
	Roles                           []string
	At                              time.Time
}

// CreateUser creates u with its roles in one transaction and returns it.
// A taken name is ErrUserExists; a name, role or display name the table's
// checks refuse is an error naming the check.
func (s *Store) CreateUser(ctx context.Context, u NewUser) (User, error) {
	var id int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		err := tx.tx.QueryRow(ctx, `
			INSERT INTO users (name, display_name, password_hash, password_changed_at, created_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING user_id`, u.Name, u.DisplayName, u.PasswordHash, u.At).Scan(&id)
		if err != nil {
			return err
		}
		return tx.setRoles(ctx, id, u.Roles)
	})
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", u.Name, userError(err))
	}
	c, err := s.userWhere(ctx, s.pool, "u.user_id = $1", id)
	return c.User, err
}

// userError translates the driver's errors of the user queries.
func userError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return ErrUserExists
		case "23514": // check_violation
			return fmt.Errorf("refused by check %s: %w", pgErr.ConstraintName, err)
		}
	}
	return err
}

// queryer is a pool or a transaction.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const userColumns = `u.user_id, u.name, u.display_name, u.password_hash, u.password_changed_at, u.disabled, u.failed_logins,
	u.locked_until, u.last_login_at, u.created_at,
	ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.user_id ORDER BY r.role)`

func scanCredentials(row pgx.Row) (Credentials, error) {
	var c Credentials
	var locked, last *time.Time
	err := row.Scan(&c.ID, &c.Name, &c.DisplayName, &c.PasswordHash, &c.PasswordChangedAt, &c.Disabled, &c.FailedLogins,
		&locked, &last, &c.CreatedAt, &c.Roles)
	c.LockedUntil, c.LastLoginAt = deref(locked), deref(last)
	return c, err
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (s *Store) userWhere(ctx context.Context, q queryer, where string, arg any) (Credentials, error) {
	c, err := scanCredentials(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// UserByName returns the user called name with its password hash, or
// ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (Credentials, error) {
	c, err := s.userWhere(ctx, s.pool, "u.name = $1", name)
	if err != nil {
		return c, fmt.Errorf("user %s: %w", name, err)
	}
	return c, nil
}

// UserByID returns the user id with its password hash, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (Credentials, error) {
	c, err := s.userWhere(ctx, s.pool, "u.user_id = $1", id)
	if err != nil {
		return c, fmt.Errorf("user %d: %w", id, err)
	}
	return c, nil
}

// Users returns every user by name, without password hashes.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
		c, err := scanCredentials(r)
		return c.User, err
	})
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// CountUsers returns how many users there are, disabled ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// SetUserDisabled disables or enables the user called name. Disabling
// also deletes the user's sessions (the web server refuses a disabled
// user's session anyway). An unknown name is ErrNotFound.
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.tx.QueryRow(ctx, `UPDATE users SET disabled = $2 WHERE name = $1 RETURNING user_id`, name, disabled).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || !disabled {
			return err
		}
		_, err = tx.tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("user %s: set disabled %t: %w", name, disabled, err)
	}
	return nil
}

// SetUserRoles replaces the roles of the user called name. An unknown name
// is ErrNotFound; a role the table does not allow is an error.
func (s *Store) SetUserRoles(ctx context.Context, name string, roles []string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.tx.QueryRow(ctx, `SELECT user_id FROM users WHERE name = $1 FOR UPDATE`, name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.tx.Exec(ctx, `DELETE FROM user_roles WHERE user_id = $1`, id); err != nil {
			return err
		}
		return tx.setRoles(ctx, id, roles)
	})
	if err != nil {
		return fmt.Errorf("user %s: set roles: %w", name, userError(err))
	}
	return nil
}

func (t *Tx) setRoles(ctx context.Context, id int64, roles []string) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, id, roles)
	return err
}

// SetPassword replaces user id's password hash, clears a lock and deletes
// every session of the user (the web server gives the session that changed
// it a new one). An unknown id is ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, at time.Time) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		tag, err := tx.tx.Exec(ctx, `
			UPDATE users SET password_hash = $2, password_changed_at = $3, failed_logins = 0, locked_until = NULL
			WHERE user_id = $1`, id, hash, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = tx.tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("user %d: set password: %w", id, err)
	}
	return nil
}

// RecordLogin notes a successful sign-in of user id at at: the count of
// wrong passwords starts again.
func (s *Store) RecordLogin(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE users SET failed_logins = 0, last_login_at = $2 WHERE user_id = $1`, id, at); err != nil {
		return fmt.Errorf("user %d: record sign-in: %w", id, err)
	}
	return nil
}

// ClearFailedLogins starts user id's count of wrong passwords again (a
// correct password at an e-signature or a password change).
func (s *Store) ClearFailedLogins(ctx context.Context, id int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE users SET failed_logins = 0 WHERE user_id = $1 AND failed_logins <> 0`, id); err != nil {
		return fmt.Errorf("user %d: clear failed sign-ins: %w", id, err)
	}
	return nil
}

// UpdatePasswordHash replaces user id's password hash old by hash made of
// the same password (new hashing parameters), keeping its sessions. It
// does nothing when the hash is no longer old (changed meanwhile).
func (s *Store) UpdatePasswordHash(ctx context.Context, id int64, old, hash string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $3 WHERE user_id = $1 AND password_hash = $2`, id, old, hash); err != nil {
		return fmt.Errorf("user %d: rehash password: %w", id, err)
	}
	return nil
}

// LoginFailure is one refused password.
type LoginFailure struct {
	At time.Time
	// UserID is 0 for a name that is no user.
	UserID int64
	Client string
	// Kind is FailureLogin, FailureSignature or FailurePasswordChange.
	Kind string
	// Reason is ReasonWrongPassword, ReasonUnknownUser, ReasonLocked or
	// ReasonDisabled.
	Reason string
}

// RecordLoginFailure records f. When f is a wrong password of a user, the
// user's count of wrong passwords goes up; the threshold-th locks the user
// until f.At+lockFor and starts the count again. It returns when the user
// is locked until (zero when not locked by this failure).
func (s *Store) RecordLoginFailure(ctx context.Context, f LoginFailure, threshold int, lockFor time.Duration) (time.Time, error) {
	var until time.Time
	err := s.WithTx(ctx, func(tx *Tx) error {
		var uid *int64
		if f.UserID != 0 {
			uid = &f.UserID
		}
		if _, err := tx.tx.Exec(ctx, `INSERT INTO login_failures (at, user_id, client, kind, reason) VALUES ($1, $2, $3, $4, $5)`,
			f.At, uid, f.Client, f.Kind, f.Reason); err != nil {
			return err
		}
		if uid == nil || f.Reason != ReasonWrongPassword {
			return nil
		}
		var locked *time.Time
		err := tx.tx.QueryRow(ctx, `
			UPDATE users SET
				failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
				locked_until  = CASE WHEN failed_logins + 1 >= $2 THEN $3::timestamptz ELSE locked_until END
			WHERE user_id = $1
			RETURNING CASE WHEN failed_logins = 0 THEN locked_until END`, f.UserID, threshold, f.At.Add(lockFor)).Scan(&locked)
		until = deref(locked)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("record failed %s of user %d: %w", f.Kind, f.UserID, err)
	}
	return until, nil
}

// LoginFailures returns the failures at or after since, oldest first, at
// most limit of them.
func (s *Store) LoginFailures(ctx context.Context, since time.Time, limit int) ([]LoginFailure, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT at, coalesce(user_id, 0), client, kind, reason FROM login_failures
		WHERE at >= $1 ORDER BY at, failure_id LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[LoginFailure])
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	return out, nil
}

// PruneLoginFailures deletes the failures before before and returns how
// many.
func (s *Store) PruneLoginFailures(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}

// NewSession is a session to create: a user's (UserID) or a kiosk's
// (TokenID), never both.
type NewSession struct {
	// Hash is the sha256 of the session id; the id itself is never stored.
	Hash    []byte
	UserID  int64
	TokenID int64
	Client  string
	At      time.Time
}

// CreateSession stores n, created and last seen at n.At.
func (s *Store) CreateSession(ctx context.Context, n NewSession) error {
	var uid, tid *int64
	if n.UserID != 0 {
		uid = &n.UserID
	}
	if n.TokenID != 0 {
		tid = &n.TokenID
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO sessions (session_hash, user_id, token_id, client, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)`,
		n.Hash, uid, tid, n.Client, n.At); err != nil {
		return fmt.Errorf("create session of user %d, token %d: %w", n.UserID, n.TokenID, err)
	}
	return nil
}

// Session is a stored session with whom it belongs to: User for a user's
// session, Token for a kiosk's.
type Session struct {
	CreatedAt, LastSeenAt time.Time
	User                  *User
	Token                 *Token
}

// Session returns the session whose id hashes to hash, or ErrNotFound. It
// does not judge expiry, a disabled user or a revoked token: the caller
// does, with its own clock.
func (s *Store) Session(ctx context.Context, hash []byte) (Session, error) {
	var out Session
	var uid, tid *int64
	var u User
	var t Token
	var uname, dname *string
	var disabled *bool
	var pwAt, tCreated, tExpires, tRevoked *time.Time
	var tname *string
	err := s.pool.QueryRow(ctx, `
		SELECT s.created_at, s.last_seen_at, s.user_id, u.name, u.display_name, u.disabled, u.password_changed_at,
			ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = s.user_id ORDER BY r.role),
			s.token_id, t.name, t.scopes, t.created_at, t.expires_at, t.revoked_at
		FROM sessions s
		LEFT JOIN users u ON u.user_id = s.user_id
		LEFT JOIN api_tokens t ON t.token_id = s.token_id
		WHERE s.session_hash = $1`, hash).Scan(&out.CreatedAt, &out.LastSeenAt, &uid, &uname, &dname, &disabled, &pwAt, &u.Roles,
		&tid, &tname, &t.Scopes, &tCreated, &tExpires, &tRevoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("session: %w", err)
	}
	if uid != nil && uname != nil {
		u.ID, u.Name, u.DisplayName, u.Disabled, u.PasswordChangedAt = *uid, *uname, *dname, *disabled, *pwAt
		out.User = &u
	}
	if tid != nil && tname != nil {
		t.ID, t.Name, t.CreatedAt, t.ExpiresAt, t.RevokedAt = *tid, *tname, *tCreated, *tExpires, deref(tRevoked)
		out.Token = &t
	}
	return out, nil
}

// TouchSession sets the session's last seen time to at.
func (s *Store) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE session_hash = $1 AND last_seen_at < $2`, hash, at); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session whose id hashes to hash; an unknown
// hash is no error.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE session_hash = $1`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// UserSessions returns how many sessions user id has.
func (s *Store) UserSessions(ctx context.Context, id int64) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("sessions of user %d: %w", id, err)
	}
	return n, nil
}

// PruneSessions deletes the users' sessions last seen before idleBefore or
// created before createdBefore, and the kiosks' sessions whose token has
// expired by now or was revoked. It returns how many it deleted.
func (s *Store) PruneSessions(ctx context.Context, idleBefore, createdBefore, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM sessions s
		WHERE (s.user_id IS NOT NULL AND (s.last_seen_at < $1 OR s.created_at < $2))
		   OR (s.token_id IS NOT NULL AND EXISTS (SELECT 1 FROM api_tokens t
		                                          WHERE t.token_id = s.token_id AND (t.expires_at <= $3 OR t.revoked_at IS NOT NULL)))`,
		idleBefore, createdBefore, now)
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Token is an API token, without its hash.
type Token struct {
	ID        int64
	Name      string
	Scopes    []string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RevokedAt is zero while the token is not revoked.
	RevokedAt time.Time
	// LastUsedAt is zero when the token was never used.
	LastUsedAt time.Time
}

// NewToken is a token to create.
type NewToken struct {
	// Hash is the sha256 of the token; the token itself is never stored.
	Hash      []byte
	Name      string
	Scopes    []string
	CreatedBy string
	At        time.Time
	ExpiresAt time.Time
}

// CreateToken stores n and returns the token as stored.
func (s *Store) CreateToken(ctx context.Context, n NewToken) (Token, error) {
	t := Token{Name: n.Name, Scopes: n.Scopes, CreatedBy: n.CreatedBy, CreatedAt: n.At, ExpiresAt: n.ExpiresAt}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO api_tokens (token_hash, name, scopes, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING token_id`, n.Hash, n.Name, n.Scopes, n.CreatedBy, n.At, n.ExpiresAt).Scan(&t.ID)
	if err != nil {
		return Token{}, fmt.Errorf("create token %s: %w", n.Name, userError(err))
	}
	return t, nil
}

const tokenColumns = `token_id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	var revoked, used *time.Time
	err := row.Scan(&t.ID, &t.Name, &t.Scopes, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &revoked, &used)
	t.RevokedAt, t.LastUsedAt = deref(revoked), deref(used)
	return t, err
}

// TokenByHash returns the token that hashes to hash, or ErrNotFound. It
// does not judge expiry or revocation: the caller does.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE token_hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens returns every token, newest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY token_id DESC`)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes token id at at and deletes the kiosk sessions made
// with it. Revoking a revoked token keeps its first revocation time. An
// unknown id is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		tag, err := tx.tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE token_id = $1`, id, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = tx.tx.Exec(ctx, `DELETE FROM sessions WHERE token_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return nil
}

// TouchToken sets token id's last use to at.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE token_id = $1`, id, at); err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}
