package schema_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
)

// withQuery returns rawURL with the query parameters kv (name, value, …)
// set.
func withQuery(t *testing.T, rawURL string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// TestDatabaseOverTLS runs a PostgreSQL with ssl = on, a server certificate
// from a plant CA (internal/pki) and a pg_hba.conf that accepts TCP only
// over TLS (hostssl): the owner and a login role connect with
// sslmode=verify-full against the CA, encrypted; a client trusting another
// CA, or one without TLS, is refused.
func TestDatabaseOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, otherCA := filepath.Join(dir, "ca"), filepath.Join(dir, "other-ca")
	for _, d := range []string{ca, otherCA} {
		if err := pki.Init(d); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := pki.Issue(ca, pki.Request{Name: "record-db", Kind: pki.Server, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pgserver.Start(t.Context(), pgserver.Config{Dir: filepath.Join(dir, "pg"), Logger: slog.New(slog.DiscardHandler),
		TLS: &pgserver.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: filepath.Join(ca, pki.CACertFile)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.WithoutCancel(t.Context())) })
	if err := srv.CreateDatabase(t.Context(), "keiline"); err != nil {
		t.Fatal(err)
	}
	dbURL := srv.URL("keiline")
	u, _ := url.Parse(dbURL)
	if q := u.Query(); q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") == "" {
		t.Fatalf("server URL %s does not ask for verify-full against the CA", u.Redacted())
	}
	if err := schema.ProvisionLogins(t.Context(), dbURL, srv.PassFile()); err != nil {
		t.Fatal(err)
	}

	owner, err := schema.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("owner over verify-full: %v", err)
	}
	defer owner.Close()
	writer, err := schema.OpenAs(t.Context(), dbURL, schema.RoleWriter)
	if err != nil {
		t.Fatalf("writer over verify-full: %v", err)
	}
	defer writer.Close()
	for name, s := range map[string]*schema.Store{"owner": owner, "writer": writer} {
		var ssl bool
		var version string
		if err := s.Pool().QueryRow(t.Context(), `SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl, &version); err != nil {
			t.Fatal(err)
		}
		if !ssl {
			t.Errorf("%s's connection is not encrypted", name)
		}
	}

	_, err = schema.OpenAs(t.Context(), withQuery(t, dbURL, "sslrootcert", filepath.Join(otherCA, pki.CACertFile)), schema.RoleWriter)
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("trusting another CA: %v, want x509.UnknownAuthorityError", err)
	}
	_, err = schema.OpenAs(t.Context(), withQuery(t, dbURL, "sslmode", "disable"), schema.RoleWriter)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Errorf("without TLS: %v, want invalid_authorization_specification (28000: no pg_hba.conf line)", err)
	}
}
