package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new password hashes: RFC 9106 section 4, the
// second recommended option (t=3, p=4, m=64 MiB), with a 128-bit salt and
// a 256-bit tag. They are written into each hash (the PHC string format),
// so raising them later only changes new hashes; a sign-in with an older
// hash rehashes the password.
const (
	Argon2Time      = 3
	Argon2MemoryKiB = 64 * 1024
	Argon2Threads   = 4
	Argon2SaltLen   = 16
	Argon2KeyLen    = 32
)

// Limits of stored hashes: a hash asking more than these is refused
// instead of computed, so a hash row cannot make sign-in exhaust memory.
const (
	argon2TimeMax      = 16
	argon2MemoryKiBMax = 1 << 20 // 1 GiB
	argon2ThreadsMax   = 64
	argon2SaltMax      = 64
	argon2KeyMax       = 64
)

// The password policy (NIST SP 800-63B: length, not composition rules).
const (
	// PasswordMinRunes is the shortest password accepted.
	PasswordMinRunes = 12
	// PasswordMaxBytes is the longest password accepted.
	PasswordMaxBytes = 256
)

// GeneratedPasswordLen is the length of passwords keiline makes (first
// admin): base32, 26 characters, 130 bits.
const GeneratedPasswordLen = 26

// ErrWeakPassword is wrapped by CheckPassword's errors.
var ErrWeakPassword = errors.New("password refused")

// params are the argon2id parameters of one hash.
type params struct {
	time, memory uint32
	threads      uint8
	keyLen       uint32
}

// hashParams are the parameters HashPassword uses (the constants above;
// tests of other behaviour may lower them, see export_test.go).
var hashParams = params{time: Argon2Time, memory: Argon2MemoryKiB, threads: Argon2Threads, keyLen: Argon2KeyLen}

// CheckPassword applies the password policy to password for the user
// called user: at least PasswordMinRunes characters, at most
// PasswordMaxBytes bytes, valid UTF-8 without control characters, not one
// character repeated, not containing the user name. The error wraps
// ErrWeakPassword and says what to change; it never quotes the password.
func CheckPassword(user, password string) error {
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: it is not valid UTF-8", ErrWeakPassword)
	case utf8.RuneCountInString(password) < PasswordMinRunes:
		return fmt.Errorf("%w: use at least %d characters (a few words make a good one)", ErrWeakPassword, PasswordMinRunes)
	case len(password) > PasswordMaxBytes:
		return fmt.Errorf("%w: use at most %d bytes", ErrWeakPassword, PasswordMaxBytes)
	case strings.ContainsFunc(password, unicode.IsControl):
		return fmt.Errorf("%w: it holds a control character", ErrWeakPassword)
	case repeated(password):
		return fmt.Errorf("%w: it is one character repeated", ErrWeakPassword)
	case user != "" && strings.Contains(strings.ToLower(password), strings.ToLower(user)):
		return fmt.Errorf("%w: it contains the user name", ErrWeakPassword)
	}
	return nil
}

// repeated reports whether s is one character repeated.
func repeated(s string) bool {
	_, size := utf8.DecodeRuneInString(s)
	return strings.Count(s, s[:size])*size == len(s)
}

// GeneratePassword returns a random password of GeneratedPasswordLen
// base32 characters from crypto/rand.
func GeneratePassword() string { return rand.Text() }

// HashPassword returns the argon2id hash of password with a fresh salt,
// in the PHC string format: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func HashPassword(password string) (string, error) {
	salt := make([]byte, Argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	p := hashParams
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	return encodeHash(p, salt, key), nil
}

func encodeHash(p params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// errBadHash is returned for a stored hash keiline cannot read.
var errBadHash = errors.New("password hash is not an argon2id PHC string keiline can verify")

// decodeHash reads a PHC string made by encodeHash. Parameters beyond the
// limits above are an error.
func decodeHash(encoded string) (params, []byte, []byte, error) {
	var p params
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadHash
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, errBadHash
	}
	var n [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		var err error
		if n[i], err = strconv.ParseUint(v, 10, 32); !ok || err != nil {
			return p, nil, nil, errBadHash
		}
	}
	if n[2] > argon2ThreadsMax {
		return p, nil, nil, errBadHash
	}
	p.memory, p.time, p.threads = uint32(n[0]), uint32(n[1]), uint8(n[2])
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(f[4])
	key, err2 := b64.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > argon2SaltMax || len(key) < 16 || len(key) > argon2KeyMax ||
		p.time == 0 || p.time > argon2TimeMax || p.threads == 0 || p.memory < 8*uint32(p.threads) || p.memory > argon2MemoryKiBMax {
		return p, nil, nil, errBadHash
	}
	p.keyLen = uint32(len(key))
	return p, salt, key, nil
}

// verifyPassword reports whether password matches encoded, comparing in
// constant time, and whether encoded was made with other parameters than
// HashPassword's (so the caller may rehash). A hash keiline cannot read
// is an error.
func verifyPassword(encoded, password string) (ok, stale bool, err error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, p != hashParams, nil
}

// hasher bounds how many argon2 computations run at once: each takes
// Argon2MemoryKiB of memory.
type hasher struct{ slots chan struct{} }

func newHasher(n int) *hasher { return &hasher{slots: make(chan struct{}, n)} }

// do runs f in a slot, waiting for one until ctx ends.
func (h *hasher) do(ctx context.Context, f func()) error {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.slots }()
	f()
	return nil
}
