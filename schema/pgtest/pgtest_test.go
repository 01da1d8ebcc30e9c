package pgtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := Main(m)
	// Main must leave nothing running behind: no postmaster waiter, no
	// connection goroutines.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn := connect(t, adminURL)
	var exists bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func currentDatabase(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var name string
	if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestNewDBFreshAndIsolated(t *testing.T) {
	t.Parallel()
	a := connect(t, NewDB(t))
	b := connect(t, NewDB(t))
	if currentDatabase(t, a) == currentDatabase(t, b) {
		t.Fatalf("two NewDB calls gave the same database %s", currentDatabase(t, a))
	}
	for _, conn := range []*pgx.Conn{a, b} {
		var tables int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("fresh database %s has %d tables", currentDatabase(t, conn), tables)
		}
	}
	if _, err := a.Exec(t.Context(), "CREATE TABLE vin (vin text)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE tablename = 'vin'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("table created in one test database is visible in another")
	}
}

func TestNewDBDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("uses a database", func(t *testing.T) {
		conn := connect(t, NewDB(t))
		name = currentDatabase(t, conn)
		// Left open on purpose: the drop must not wait for it.
		if _, err := conn.Exec(t.Context(), "CREATE TABLE joint (torque numeric)"); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Fatal("subtest got no database")
	}
	if databaseExists(t, name) {
		t.Errorf("database %s still exists after its test", name)
	}
}

func TestDBName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	tests := []struct {
		name     string
		testName string
		pid      int
		n        int64
		want     string // "" means: only check validity
	}{
		{name: "plain", testName: "TestRecord", pid: 42, n: 1, want: "t_testrecord_42_1"},
		{name: "subtest", testName: "TestRecord/duplicate event", pid: 42, n: 7, want: "t_testrecord_duplicate_event_42_7"},
		{name: "non-ASCII", testName: "TestStation/Schweißen-ü", pid: 1, n: 2, want: "t_teststation_schwei_en_1_2"},
		{name: "long", testName: "Test" + strings.Repeat("Andon", 30), pid: 4194304, n: 123456},
		{name: "long ending at separator", testName: strings.Repeat("a", 49) + "/b", pid: 1, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dbName(tt.testName, tt.pid, tt.n)
			if tt.want != "" && got != tt.want {
				t.Errorf("dbName() = %q, want %q", got, tt.want)
			}
			if len(got) > maxIdentLen || !valid.MatchString(got) || strings.Contains(got, "__") {
				t.Errorf("dbName() = %q (%d bytes): want <= %d bytes of [a-z0-9_] without __", got, len(got), maxIdentLen)
			}
			if suffix := fmt.Sprintf("_%d_%d", tt.pid, tt.n); !strings.HasSuffix(got, suffix) {
				t.Errorf("dbName() = %q lost the unique suffix %s", got, suffix)
			}
		})
	}
}

func TestDatabaseURL(t *testing.T) {
	tests := []struct {
		name    string
		admin   string
		want    string
		wantErr bool
	}{
		{name: "admin URL", admin: "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable",
			want: "postgres://postgres@127.0.0.1:5433/t_x_1_1?sslmode=disable"},
		{name: "no database", admin: "postgresql://u:secret@db:5433", want: "postgresql://u:secret@db:5433/t_x_1_1"},
		{name: "keyword form", admin: "host=db dbname=postgres", wantErr: true},
		{name: "other scheme", admin: "mysql://db/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := databaseURL(tt.admin, "t_x_1_1")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("databaseURL() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
