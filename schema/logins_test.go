package schema_test

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgauth"
	"github.com/keiline/keiline/schema/pgtest"
)

// withPassFile returns rawURL with its passfile parameter set to path.
func withPassFile(t *testing.T, rawURL, path string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("passfile", path)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestLoginRolesHavePasswords: each role keiline logs in as has LOGIN, a
// SCRAM-SHA-256 password from the password file and no power over roles or
// databases; without its password, or with a wrong one, the server refuses
// it and the error names the role and the fix; provisioning again keeps
// the passwords. Not parallel: it sets PGPASSFILE.
func TestLoginRolesHavePasswords(t *testing.T) {
	dbURL := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	u, _ := url.Parse(dbURL)
	pass := pgauth.File(u.Query().Get("passfile"))
	if pass == "" {
		t.Fatalf("pgtest URL %s names no password file", u.Redacted())
	}
	before := map[string]string{}
	for _, role := range schema.LoginRoles {
		if before[role], err = pass.Password(u.Hostname(), role); err != nil || before[role] == "" {
			t.Fatalf("%s: no password in %s (%v)", role, pass, err)
		}
	}
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none")) // no fallback to ~/.pgpass

	wrong := pgauth.File(filepath.Join(t.TempDir(), "wrong.pgpass"))
	for _, role := range schema.LoginRoles {
		t.Run(role, func(t *testing.T) {
			s, err := schema.OpenAs(t.Context(), dbURL, role)
			if err != nil {
				t.Fatalf("OpenAs with the password file: %v", err)
			}
			defer s.Close()
			var user string
			var login, super, createRole, createDB bool
			err = s.Pool().QueryRow(t.Context(), `SELECT current_user, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb
				FROM pg_roles WHERE rolname = current_user`).Scan(&user, &login, &super, &createRole, &createDB)
			if err != nil {
				t.Fatal(err)
			}
			if user != role || !login || super || createRole || createDB {
				t.Errorf("connected as %s: login %v superuser %v createrole %v createdb %v; want %s, login only", user, login, super, createRole, createDB, role)
			}
			var verifier string
			if err := owner.Pool().QueryRow(t.Context(), `SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1`, role).Scan(&verifier); err == nil &&
				!strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") {
				t.Errorf("stored password %.16q…, want a SCRAM-SHA-256 verifier", verifier)
			}

			_, err = schema.OpenAs(t.Context(), withPassFile(t, dbURL, filepath.Join(t.TempDir(), "absent")), role)
			refused(t, "without a password", err, role, "no password for "+role)
			if err := wrong.Set(u.Hostname(), role, "not-"+before[role]); err != nil {
				t.Fatal(err)
			}
			_, err = schema.OpenAs(t.Context(), withPassFile(t, dbURL, string(wrong)), role)
			refused(t, "with a wrong password", err, role, "is not the server's")
		})
	}

	if err := schema.ProvisionLogins(t.Context(), dbURL, pass); err != nil {
		t.Fatal(err)
	}
	for _, role := range schema.LoginRoles {
		if pw, _ := pass.Password(u.Hostname(), role); pw != before[role] {
			t.Errorf("%s: provisioning again changed its password", role)
		}
		s, err := schema.OpenAs(t.Context(), dbURL, role)
		if err != nil {
			t.Fatalf("%s after provisioning again: %v", role, err)
		}
		s.Close()
	}
}

// refused fails t unless err is the server refusing role's password
// (28P01) with an error that names role and says hint.
func refused(t *testing.T, what string, err error, role, hint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.Errorf("%s: connected", what)
	case !errors.As(err, &pgErr) || pgErr.Code != "28P01":
		t.Errorf("%s: %v, want invalid_password (28P01)", what, err)
	case !strings.Contains(err.Error(), "as "+role) || !strings.Contains(err.Error(), hint):
		t.Errorf("%s: %q does not name %s and say %q", what, err, role, hint)
	}
}
