package web_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
)

// TestFirstAdmin: an empty users table gets an admin whose password is
// only in a 0600 file; the password signs in; a second call does nothing.
func TestFirstAdmin(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noUsers: true})
	dir := t.TempDir()
	// The web server's role cannot make users, not even the first.
	if p, err := web.FirstAdmin(t.Context(), r.store, dir, r.clock.Now()); err == nil || p != "" {
		t.Fatalf("FirstAdmin as the web role = %q, %v; want an error", p, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a refused FirstAdmin left %v", left)
	}
	path, err := web.FirstAdmin(t.Context(), r.owner, dir, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, web.AdminPasswordFile) {
		t.Fatalf("path %q", path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file %v, %v: want mode 0600", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	pw := strings.TrimSpace(string(b))
	if len(pw) != web.GeneratedPasswordLen {
		t.Fatalf("password of %d characters", len(pw))
	}
	c := r.client(true)
	resp := c.login(web.FirstAdminName, pw)
	wantStatus(t, "sign in as the first admin", resp, http.StatusSeeOther)
	c.refreshCSRF()
	if who := c.get("/whoami").body; !strings.Contains(who, `"who":"user admin"`) || !strings.Contains(who, `"admin"`) {
		t.Errorf("whoami %s", who)
	}
	again, err := web.FirstAdmin(t.Context(), r.owner, dir, r.clock.Now())
	if err != nil || again != "" {
		t.Errorf("second FirstAdmin = %q, %v; want nothing done", again, err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Error("the second call changed the password file")
	}
	if strings.Contains(r.logs.String(), pw) {
		t.Error("the first admin's password is in the log")
	}
}

func TestCreateUserAndTokenChecks(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noUsers: true})
	now := r.clock.Now()
	for name, u := range map[string]web.NewUser{
		"upper-case name": {Name: "Sato", Password: "a long enough password", Roles: []web.Role{web.Operator}},
		"no role":         {Name: "sato", Password: "a long enough password"},
		"unknown role":    {Name: "sato", Password: "a long enough password", Roles: []web.Role{"boss"}},
		"weak password":   {Name: "sato", Password: "sato1234", Roles: []web.Role{web.Operator}},
	} {
		if _, err := web.CreateUser(t.Context(), r.owner, u, now); err == nil {
			t.Errorf("%s: created", name)
		}
	}
	if _, err := web.CreateUser(t.Context(), r.store, web.NewUser{Name: "sato", Password: "a long enough password", Roles: []web.Role{web.Operator}}, now); err == nil {
		t.Error("the web role created a user")
	}
	u := web.NewUser{Name: "sato", Password: "a long enough password", Roles: []web.Role{web.Operator}}
	if _, err := web.CreateUser(t.Context(), r.owner, u, now); err != nil {
		t.Fatal(err)
	}
	if _, err := web.CreateUser(t.Context(), r.owner, u, now); !errors.Is(err, schema.ErrUserExists) {
		t.Errorf("sato twice: %v", err)
	}
	for name, n := range map[string]web.NewAPIToken{
		"no scope":       {Name: "x"},
		"unknown scope":  {Name: "x", Scopes: []web.Scope{"orders:delete"}},
		"too long-lived": {Name: "x", Scopes: []web.Scope{web.ScopeOrdersWrite}, Lifetime: web.TokenLifetimeMax + time.Hour},
		"no name":        {Scopes: []web.Scope{web.ScopeOrdersWrite}},
	} {
		if _, _, err := web.CreateToken(t.Context(), r.owner, n, now); err == nil {
			t.Errorf("token with %s: created", name)
		}
	}
	tok, row, err := web.CreateToken(t.Context(), r.owner, web.NewAPIToken{Name: "erp", Scopes: []web.Scope{web.ScopeOrdersWrite}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, web.TokenPrefix) || !row.ExpiresAt.Equal(now.Add(web.TokenLifetimeDefault)) {
		t.Errorf("token %q expires %v", tok[:3], row.ExpiresAt)
	}
	if _, _, err := web.CreateToken(t.Context(), r.store, web.NewAPIToken{Name: "x", Scopes: []web.Scope{web.ScopeOrdersWrite}}, now); err == nil {
		t.Error("the web role minted a token")
	}
}

// TestServeTLSWithSelfSignedCertificate serves the middleware over HTTPS
// with a made certificate, and metrics on an address of their own.
func TestServeTLSWithSelfSignedCertificate(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	dir := t.TempDir()
	now := time.Now()
	cfg, certPath, err := web.SelfSignedTLS(dir, []string{"mes.plant.local"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, web.KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want 0600", fi, err)
	}
	certPEM, _ := os.ReadFile(certPath)
	if _, _, err := web.SelfSignedTLS(dir, []string{"mes.plant.local"}, now); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(certPath); string(again) != string(certPEM) {
		t.Error("a valid certificate was made anew")
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "keiline_up 1\n") })
	srv, err := web.Listen(t.Context(), web.ServerConfig{Addr: "127.0.0.1:0", Handler: r.auth.Handler(rigMux(r.auth)), TLS: cfg,
		MetricsAddr: "127.0.0.1:0", Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.WithoutCancel(t.Context()))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("certificate PEM not readable")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s", srv.URL())
	}
	resp, err := hc.Get(srv.URL() + "healthz")
	if err != nil {
		t.Fatalf("HTTPS with the made certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" || resp.TLS == nil {
		t.Errorf("healthz over TLS: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get(srv.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "keiline_up 1\n" {
		t.Errorf("metrics: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(strings.TrimSuffix(srv.MetricsURL(), "metrics") + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics address serves the application: %d", resp.StatusCode)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	// Near its end, or for another host, the certificate is made anew.
	if _, _, err := web.SelfSignedTLS(dir, []string{"mes.plant.local"}, now.Add(web.SelfSignedValidity-web.SelfSignedRenewBefore+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if renewed, _ := os.ReadFile(certPath); string(renewed) == string(certPEM) {
		t.Error("a certificate about to expire was kept")
	}
	if _, err := web.LoadTLS(certPath, filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("LoadTLS of a missing key: %v", err)
	}
}
