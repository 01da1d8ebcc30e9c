package web

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/keiline/keiline/schema"
)

// Administration of users and tokens. These functions need a store
// connected as the schema's owner (schema.Open), not as schema.RoleWeb:
// the web server cannot create users, change roles or mint tokens.

// Limits of tokens.
const (
	// TokenLifetimeDefault is how long a token lives unless told.
	TokenLifetimeDefault = 90 * 24 * time.Hour
	// TokenLifetimeMax is the longest a token may live (a line-side TV's
	// token is renewed yearly).
	TokenLifetimeMax = 400 * 24 * time.Hour
	// TokenNameMax is the longest token name.
	TokenNameMax = 100
	// DisplayNameMax is the longest display name.
	DisplayNameMax = 200
)

// FirstAdminName is the user FirstAdmin creates.
const FirstAdminName = "admin"

// AdminPasswordFile is the file of the state dir FirstAdmin writes the
// first admin's password to.
const AdminPasswordFile = "admin-password"

var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// CheckUserName returns nil when name is a valid user name: 1 to 64
// lowercase letters, digits, '.', '_' or '-', starting with a letter or
// digit.
func CheckUserName(name string) error {
	if !userName.MatchString(name) {
		return fmt.Errorf("user name %q: want 1 to 64 of a-z 0-9 . _ - (lowercase), starting with a letter or digit", name)
	}
	return nil
}

// NewUser is a user to create with CreateUser.
type NewUser struct {
	Name, DisplayName, Password string
	Roles                       []Role
}

// CreateUser checks u (CheckUserName, CheckPassword, at least one role)
// and stores it with its password hashed. A taken name wraps
// schema.ErrUserExists.
func CreateUser(ctx context.Context, store *schema.Store, u NewUser, now time.Time) (schema.User, error) {
	if err := CheckUserName(u.Name); err != nil {
		return schema.User{}, err
	}
	if len(u.Roles) == 0 {
		return schema.User{}, fmt.Errorf("user %s: give at least one role", u.Name)
	}
	if _, err := ParseRoles(toStrings(u.Roles)); err != nil {
		return schema.User{}, fmt.Errorf("user %s: %w", u.Name, err)
	}
	if utf8.RuneCountInString(u.DisplayName) > DisplayNameMax {
		return schema.User{}, fmt.Errorf("user %s: display name longer than %d characters", u.Name, DisplayNameMax)
	}
	if err := CheckPassword(u.Name, u.Password); err != nil {
		return schema.User{}, fmt.Errorf("user %s: %w", u.Name, err)
	}
	hash, err := HashPassword(u.Password)
	if err != nil {
		return schema.User{}, err
	}
	return store.CreateUser(ctx, schema.NewUser{Name: u.Name, DisplayName: u.DisplayName, PasswordHash: hash, Roles: toStrings(u.Roles), At: now})
}

// SetPassword sets the password of the user called name (CheckPassword),
// ends every session of the user and clears a lock. An unknown name wraps
// schema.ErrNotFound.
func SetPassword(ctx context.Context, store *schema.Store, name, password string, now time.Time) error {
	c, err := store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if err := CheckPassword(name, password); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return store.SetPassword(ctx, c.ID, hash, now)
}

// NewAPIToken is a token to create with CreateToken.
type NewAPIToken struct {
	Name   string
	Scopes []Scope
	// Lifetime defaults to TokenLifetimeDefault, at most TokenLifetimeMax.
	Lifetime time.Duration
	// CreatedBy says who made it ("admin sato", "cli root").
	CreatedBy string
}

// CreateToken stores a new API token and returns it — the only time it is
// seen: only its hash is kept — with its stored row.
func CreateToken(ctx context.Context, store *schema.Store, n NewAPIToken, now time.Time) (string, schema.Token, error) {
	if n.Name == "" || utf8.RuneCountInString(n.Name) > TokenNameMax {
		return "", schema.Token{}, fmt.Errorf("token name: want 1 to %d characters", TokenNameMax)
	}
	if len(n.Scopes) == 0 {
		return "", schema.Token{}, fmt.Errorf("token %s: give at least one scope", n.Name)
	}
	scopes, err := ParseScopes(toStrings(n.Scopes))
	if err != nil {
		return "", schema.Token{}, fmt.Errorf("token %s: %w", n.Name, err)
	}
	if n.Lifetime == 0 {
		n.Lifetime = TokenLifetimeDefault
	}
	if n.Lifetime < 0 || n.Lifetime > TokenLifetimeMax {
		return "", schema.Token{}, fmt.Errorf("token %s: lifetime %v: want more than 0 and at most %v (default %v)", n.Name, n.Lifetime, TokenLifetimeMax, TokenLifetimeDefault)
	}
	tok, hash := newToken()
	t, err := store.CreateToken(ctx, schema.NewToken{Hash: hash, Name: n.Name, Scopes: toStrings(scopes), CreatedBy: n.CreatedBy,
		At: now, ExpiresAt: now.Add(n.Lifetime)})
	if err != nil {
		return "", schema.Token{}, err
	}
	return tok, t, nil
}

// FirstAdmin makes sure someone can sign in: when store has no user, it
// creates FirstAdminName with the admin role and a generated password,
// writes the password to AdminPasswordFile in dir (mode 0600) and returns
// that file's path, to tell the operator ("sign in as admin; the password
// is in …"). With any user already there it does nothing and returns "".
// The password is never logged or returned.
func FirstAdmin(ctx context.Context, store *schema.Store, dir string, now time.Time) (string, error) {
	n, err := store.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	password := GeneratePassword()
	path := filepath.Join(dir, AdminPasswordFile)
	if err := writeSecret(path, []byte(password+"\n")); err != nil {
		return "", fmt.Errorf("first admin: %w", err)
	}
	_, err = CreateUser(ctx, store, NewUser{Name: FirstAdminName, DisplayName: "Administrator", Password: password, Roles: []Role{Admin}}, now)
	if errors.Is(err, schema.ErrUserExists) { // another keiline made it meanwhile
		return "", os.Remove(path)
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("first admin: %w", err)
	}
	return path, nil
}

// writeSecret writes b to path with mode 0600, replacing any file there
// atomically (a temporary file, made 0600 by os.CreateTemp, renamed).
func writeSecret(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
