package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/schema/pgauth"
)

// LoginRoles are the roles keiline's parts log in as, besides the schema's
// owner: the tracker (RoleWriter), trace and audit (RoleAuditor), the web
// server (RoleWeb). Their privileges are the migrations'.
var LoginRoles = []string{RoleWriter, RoleAuditor, RoleWeb}

// provisionLock is the advisory lock key ProvisionLogins holds, so that
// processes provisioning through the same database do not race on the
// roles' catalog rows ("tuple concurrently updated").
const provisionLock = 0x6b65696c696e6531 // "keiline1"

// ProvisionLogins gives each of LoginRoles LOGIN and a password on the
// server at ownerURL, creating the role when it does not exist yet (the
// migrations then find it and grant it its privileges). ownerURL's user
// must be a superuser or hold CREATEROLE with ADMIN OPTION on the roles:
// this is for clusters keiline runs itself (schema/pgserver) and for test
// servers; a plant's DBA sets the passwords of an external database (see
// docs/security.md).
//
// The passwords come from pass, each on the line host:*:*:role with host
// the URL's; a role pass has none for gets a generated one, added to pass
// first. The server is given only a SCRAM-SHA-256 verifier. Running it
// again (every start) keeps the passwords. Errors name the role.
func ProvisionLogins(ctx context.Context, ownerURL string, pass pgauth.File) error {
	cfg, err := ConnConfig(ownerURL, "")
	if err != nil {
		return err
	}
	c := cfg.ConnConfig
	conn, err := pgx.ConnectConfig(ctx, c)
	if err != nil {
		return fmt.Errorf("provision logins: database %s:%d/%s as %s: %w%s", c.Host, c.Port, c.Database, c.User, err, loginHint(err, c.User, c.Password == ""))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, role := range LoginRoles {
		password, _, err := pass.Ensure(c.Host, role)
		if err != nil {
			return fmt.Errorf("provision login %s: %w", role, err)
		}
		verifier, err := pgauth.Verifier(password)
		if err != nil {
			return fmt.Errorf("provision login %s: %w", role, err)
		}
		err = provisionLogin(ctx, conn, role, verifier)
		if isDuplicateRole(err) { // a migration elsewhere made it meanwhile
			err = provisionLogin(ctx, conn, role, verifier)
		}
		if err != nil {
			return fmt.Errorf("provision login %s on %s:%d as %s: %w", role, c.Host, c.Port, c.User, err)
		}
	}
	return nil
}

// provisionLogin creates role when absent and sets LOGIN and its verifier,
// in one transaction holding provisionLock. Utility statements take no
// parameters: the role is quoted as an identifier, the verifier (base64,
// digits, '$', ':') as a literal.
func provisionLogin(ctx context.Context, conn *pgx.Conn, role, verifier string) error {
	ident := pgx.Identifier{role}.Sanitize()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(provisionLock)); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE ROLE "+ident+" WITH LOGIN"); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "ALTER ROLE "+ident+" WITH LOGIN PASSWORD '"+strings.ReplaceAll(verifier, "'", "''")+"'")
		return err
	})
}

// isDuplicateRole reports whether err is CREATE ROLE losing to another
// session's: duplicate_object, or unique_violation on the catalog.
func isDuplicateRole(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505")
}
