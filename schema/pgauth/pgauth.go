// Package pgauth holds the passwords of PostgreSQL roles: generated
// passwords, the SCRAM-SHA-256 verifiers a server stores instead of them,
// and libpq password files (pgpass) that keep them for the clients.
//
// A server is only ever given a verifier (ALTER ROLE … PASSWORD
// 'SCRAM-SHA-256$…'), so a password never reaches a server log, a
// statement statistic or a replication stream.
package pgauth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Password generation and hashing parameters.
const (
	// PasswordBytes is the entropy of a generated password: 32 random
	// bytes, 43 characters of unpadded base64url.
	PasswordBytes = 32
	// ScramIterations is the PBKDF2 iteration count of a verifier, the
	// PostgreSQL default (scram_iterations).
	ScramIterations = 4096
	// scramSaltBytes is the salt length PostgreSQL uses (SCRAM_DEFAULT_SALT_LEN).
	scramSaltBytes = 16
)

// NewPassword returns a random password of PasswordBytes from crypto/rand,
// in unpadded base64url: letters, digits, '-' and '_', so it needs no
// escaping in a password file, a URL or SQL.
func NewPassword() string {
	b := make([]byte, PasswordBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Verifier returns the SCRAM-SHA-256 verifier of password as PostgreSQL
// stores it in pg_authid.rolpassword (RFC 5802 §3, RFC 7677):
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// with a random salt, each part in standard base64. PostgreSQL accepts
// this string in CREATE/ALTER ROLE … PASSWORD as an already hashed
// password. The password is used as given: PostgreSQL's SASLprep
// normalisation leaves ASCII passwords such as NewPassword's unchanged.
func Verifier(password string) (string, error) {
	salt := make([]byte, scramSaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("pgauth: salt: %w", err)
	}
	return verifier(password, salt, ScramIterations)
}

func verifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("pgauth: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
