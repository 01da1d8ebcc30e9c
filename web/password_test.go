package web

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestHashPasswordUsesRFC9106Params hashes with the production parameters
// (the other tests use cheap ones) and checks what the hash says.
func TestHashPasswordUsesRFC9106Params(t *testing.T) {
	saved := hashParams
	hashParams = params{time: Argon2Time, memory: Argon2MemoryKiB, threads: Argon2Threads, keyLen: Argon2KeyLen}
	defer func() { hashParams = saved }()
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Errorf("hash %q: want argon2id m=65536 t=3 p=4", h)
	}
	p, salt, key, err := decodeHash(h)
	if err != nil || len(salt) != Argon2SaltLen || len(key) != Argon2KeyLen || p != hashParams {
		t.Fatalf("decode: %+v salt %d key %d: %v", p, len(salt), len(key), err)
	}
	if ok, stale, err := verifyPassword(h, "correct horse battery staple"); !ok || stale || err != nil {
		t.Errorf("verify right = %t stale %t %v", ok, stale, err)
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h2 == h {
		t.Error("two hashes of one password are equal: no fresh salt")
	}
}

func TestVerifyPasswordStaleAndTampered(t *testing.T) {
	h, err := HashPassword("a password long enough")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := verifyPassword(h, "a password long enougH"); ok || err != nil {
		t.Errorf("wrong password: ok %t, %v", ok, err)
	}
	// A hash of other parameters verifies and asks for a rehash.
	saved := hashParams
	hashParams.time++
	ok, stale, err := verifyPassword(h, "a password long enough")
	hashParams = saved
	if !ok || !stale || err != nil {
		t.Errorf("older hash: ok %t stale %t %v; want ok and stale", ok, stale, err)
	}
	f := strings.Split(h, "$")
	for name, bad := range map[string]string{
		"other key":      strings.Join(append(f[:5:5], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "$"),
		"argon2i":        strings.Replace(h, "argon2id", "argon2i", 1),
		"version 16":     strings.Replace(h, "v=19", "v=16", 1),
		"huge memory":    strings.Replace(h, f[3], "m=4194304,t=1,p=1", 1),
		"huge time":      strings.Replace(h, f[3], "m=1024,t=1000,p=1", 1),
		"zero threads":   strings.Replace(h, f[3], "m=1024,t=1,p=0", 1),
		"order swapped":  strings.Replace(h, f[3], "t=1,m=1024,p=1", 1),
		"extra param":    strings.Replace(h, f[3], f[3]+",x=1", 1),
		"truncated":      h[:len(h)-20],
		"empty":          "",
		"bcrypt":         "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"short salt":     strings.Join([]string{"", f[1], f[2], f[3], "AAAA", f[5]}, "$"),
		"negative param": strings.Replace(h, f[3], "m=-1,t=1,p=1", 1),
	} {
		ok, _, err := verifyPassword(bad, "a password long enough")
		if name == "other key" || name == "truncated" { // readable, and wrong
			if ok || err != nil {
				t.Errorf("%s: ok %t, %v; want a refusal", name, ok, err)
			}
			continue
		}
		if ok || !errors.Is(err, errBadHash) {
			t.Errorf("%s (%q): ok %t, %v; want errBadHash", name, bad, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"sato", "correct horse battery", true},
		{"sato", "ラインの安全第一でお願いします", true},
		{"sato", "short pw", false},
		{"sato", "ああああああああああああ", false},
		{"sato", "aaaaaaaaaaaaaaaa", false},
		{"sato", "my name is SATO really", false},
		{"sato", "tab\tinside the password", false},
		{"sato", strings.Repeat("long ", 60), false},
		{"sato", "bad utf8 \xff\xfe here!!", false},
	} {
		err := CheckPassword(c.user, c.pw)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("CheckPassword(%q, %q) = %v, want ok %t", c.user, c.pw, err, c.ok)
		}
		if err != nil && strings.Contains(err.Error(), c.pw) {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
	if g := GeneratePassword(); len(g) != GeneratedPasswordLen || CheckPassword(FirstAdminName, g) != nil {
		t.Errorf("generated %q (%d): %v", g, len(g), CheckPassword(FirstAdminName, g))
	}
}

func TestLimiterForgetsRefilledKeys(t *testing.T) {
	l := newLimiter(time.Second, 2)
	now := time.Now()
	if !l.allow("a", now) || !l.allow("a", now) || l.allow("a", now) {
		t.Fatal("burst of 2 not kept")
	}
	if !l.allow("b", now) {
		t.Fatal("another key is limited by a")
	}
	l.sweep(now.Add(time.Hour))
	if len(l.keys) != 0 {
		t.Errorf("%d keys kept after they refilled", len(l.keys))
	}
	if !l.allow("a", now.Add(time.Hour)) {
		t.Error("a refused after refilling")
	}
}

func TestStyleHashes(t *testing.T) {
	fsys := fstest.MapFS{
		"a.html": {Data: []byte("<style>b{}</style><p>x</p><style>i{}</style>")},
		"b.html": {Data: []byte("<style>b{}</style>")},
	}
	got, err := StyleHashes(fsys, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{HashSource([]byte("b{}")), HashSource([]byte("i{}"))}; !slices.Equal(got, want) {
		t.Errorf("hashes %v, want %v", got, want)
	}
	if !strings.HasPrefix(got[0], "'sha256-") {
		t.Errorf("source %q", got[0])
	}
	fsys["c.html"] = &fstest.MapFile{Data: []byte("<style>{{.Colour}}</style>")}
	if _, err := StyleHashes(fsys, "*.html"); err == nil {
		t.Error("a templated <style> block was hashed")
	}
}

func TestCSPBuilder(t *testing.T) {
	c := DefaultCSP().Add("style-src", "'sha256-abc='").With("img-src", "'self'")
	want := "default-src 'self'; script-src 'self'; style-src 'self' 'sha256-abc='; img-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
	if c.String() != want {
		t.Errorf("CSP\n%s\nwant\n%s", c, want)
	}
	if DefaultCSP().String() == c.String() {
		t.Error("With changed the default")
	}
	defer func() {
		if recover() == nil {
			t.Error("a source with ';' was accepted")
		}
	}()
	DefaultCSP().With("script-src", "'self'; script-src *")
}
