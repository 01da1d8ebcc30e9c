package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgauth"
	"github.com/keiline/keiline/schema/pgserver"
)

// TestOldTrustStateDirKeepsWorking makes a state dir's cluster look like
// one of a keiline from before passwords — pg_hba.conf trusting every
// local connection, no role with a password, no password file — and opens
// it again as up and the tools do: it is converted (no trust left, every
// role a password in <state>/secrets/pg.pgpass) and the writer and the
// auditor log in to the same record.
func TestOldTrustStateDirKeepsWorking(t *testing.T) {
	ctx := t.Context()
	state := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	db, err := openDatabase(ctx, "", state, log)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := schema.Open(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Pool().Exec(ctx, `CREATE TABLE before_upgrade (n int); INSERT INTO before_upgrade VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	for _, role := range append([]string{"postgres"}, schema.LoginRoles...) {
		if _, err := owner.Pool().Exec(ctx, "ALTER ROLE "+role+" PASSWORD NULL"); err != nil {
			t.Fatal(err)
		}
	}
	owner.Close()
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(state, "pg")
	hba := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pass := pgserver.DefaultPassFile(dir)
	if err := os.Remove(pass); err != nil {
		t.Fatal(err)
	}

	db, err = openDatabase(ctx, "", state, log)
	if err != nil {
		t.Fatalf("opening the old state dir: %v", err)
	}
	t.Cleanup(func() { _ = db.Close(context.WithoutCancel(ctx)) })
	b, err := os.ReadFile(hba)
	if err != nil || regexp.MustCompile(`(?m)\strust\s*$`).Match(b) {
		t.Errorf("pg_hba.conf after the upgrade (%v):\n%s", err, b)
	}
	for _, role := range append([]string{"postgres"}, schema.LoginRoles...) {
		if pw, err := pgauth.File(pass).Password("127.0.0.1", role); err != nil || pw == "" {
			t.Errorf("%s: no password in %s (%v)", role, pass, err)
		}
	}
	writer, err := schema.OpenRole(ctx, db.URL, schema.RoleWriter)
	if err != nil {
		t.Fatalf("writer after the upgrade: %v", err)
	}
	defer writer.Close()
	auditor, err := schema.OpenAs(ctx, db.URL, schema.RoleAuditor)
	if err != nil {
		t.Fatalf("auditor after the upgrade: %v", err)
	}
	defer auditor.Close()
	var n int
	if err := auditor.Pool().QueryRow(ctx, `SELECT n FROM before_upgrade`).Scan(&n); err != nil || n != 7 {
		t.Errorf("the record from before the upgrade: %d, %v; want 7", n, err)
	}
}
