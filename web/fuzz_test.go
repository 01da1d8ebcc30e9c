package web

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The decoders of outside input: the session cookie, the Authorization
// header, a stored password hash, the sign-in page's next, the
// Accept-Language header and the CSRF token of a form or header.

func FuzzParseSessionID(f *testing.F) {
	f.Add(newSecret(sessionIDBytes))
	f.Add("")
	f.Add(strings.Repeat("A", sessionIDLen))
	f.Add(strings.Repeat("_", sessionIDLen-1) + "=")
	f.Add("kl_" + strings.Repeat("-", 40))
	f.Fuzz(func(t *testing.T, s string) {
		raw, ok := parseSessionID(s)
		if !ok {
			return
		}
		if len(raw) != sessionIDBytes || b64.EncodeToString(raw) != s {
			t.Fatalf("%q accepted as %x", s, raw)
		}
		if csrfToken(raw) == s || bytes.Equal(sessionHash(raw), raw) {
			t.Fatal("the CSRF token or the stored hash is the session id")
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	tok, _ := newToken()
	for _, s := range []string{"Bearer " + tok, "bearer " + tok, "Bearer  " + tok + " ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer kl_", "", tok,
		"Bearer " + strings.Replace(tok, "kl_", "KL_", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", header)
		cred, present := bearer(r)
		if r.Header.Get("Authorization") != "" && !present {
			t.Fatalf("header %q: a credential was ignored (the request would be anonymous)", header)
		}
		hash, ok := parseToken(cred)
		if !ok {
			return
		}
		sum := sha256.Sum256([]byte(cred))
		if !strings.HasPrefix(cred, TokenPrefix) || len(cred) != tokenLen || !bytes.Equal(hash, sum[:]) {
			t.Fatalf("%q accepted", cred)
		}
		if raw, err := b64.DecodeString(cred[len(TokenPrefix):]); err != nil || b64.EncodeToString(raw) != cred[len(TokenPrefix):] {
			t.Fatalf("%q: two spellings of one token", cred)
		}
	})
}

func FuzzDecodeHash(f *testing.F) {
	h, _ := HashPassword("a password long enough")
	f.Add(h)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decodeHash(s)
		if err != nil {
			return
		}
		if p.memory > argon2MemoryKiBMax || p.time > argon2TimeMax || p.threads == 0 || p.threads > argon2ThreadsMax || p.time == 0 ||
			p.memory < 8*uint32(p.threads) || len(salt) > argon2SaltMax || len(key) > argon2KeyMax || int(p.keyLen) != len(key) {
			t.Fatalf("%q decoded beyond the limits: %+v salt %d key %d", s, p, len(salt), len(key))
		}
		p2, salt2, key2, err := decodeHash(encodeHash(p, salt, key))
		if err != nil || p2 != p || !bytes.Equal(salt2, salt) || !bytes.Equal(key2, key) {
			t.Fatalf("%q does not round-trip: %v", s, err)
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/trace/?vin=1", "//evil.example", "/\\evil.example", "https://evil.example", "/%2F%2Fevil", "/\t/evil",
		"javascript:alert(1)", "/..//evil", "/a\r\nSet-Cookie: x=1", "///evil", "/.\\./evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://mes.plant.example/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither next nor /", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q does not parse: %v", next, got, err)
		}
		if to := base.ResolveReference(u); to.Host != base.Host || to.Scheme != base.Scheme {
			t.Fatalf("safeNext(%q) = %q leads to %s", next, got, to)
		}
		if strings.ContainsAny(got, "\\\r\n\t") {
			t.Fatalf("safeNext(%q) = %q holds what a browser reads as a separator", next, got)
		}
	})
}

func FuzzNegotiateLang(f *testing.F) {
	for _, s := range []string{"ja,en;q=0.5", "en-US,en;q=0.9,ja;q=0.8", "fr", "", "ja;q=0", "ja;q=abc,en", "*", "ja;q=1.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if l := negotiateLang(header); !slices.Contains(Languages, l) {
			t.Fatalf("negotiateLang(%q) = %q", header, l)
		}
	})
}

func FuzzCheckCSRF(f *testing.F) {
	raw := make([]byte, sessionIDBytes)
	want := csrfToken(raw)
	f.Add("application/x-www-form-urlencoded", CSRFField+"="+want, "")
	f.Add("application/x-www-form-urlencoded", CSRFField+"="+want+"&"+CSRFField+"=x", "")
	f.Add("application/x-www-form-urlencoded", "a=1", want)
	f.Add("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\""+CSRFField+"\"\r\n\r\n"+want+"\r\n--b--\r\n", "")
	f.Add("application/json", `{"csrf_token":"`+want+`"}`, "")
	f.Add("multipart/form-data", "%%%", "")
	f.Fuzz(func(t *testing.T, contentType, body, header string) {
		r := httptest.NewRequest(http.MethodPost, "/plan", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if header != "" {
			r.Header.Set(CSRFHeader, header)
		}
		err := checkCSRF(httptest.NewRecorder(), r, &Identity{Kind: KindUser, csrf: want}, FormBodyMax)
		if err != nil {
			return
		}
		switch got := r.Header.Get(CSRFHeader); {
		case got != "":
			if got != want {
				t.Fatalf("header %q accepted", got)
			}
		case !isForm(r) || r.PostForm.Get(CSRFField) != want:
			t.Fatalf("%s body %q accepted without the token", contentType, body)
		}
	})
}
