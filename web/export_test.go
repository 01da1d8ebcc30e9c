package web

// The tests hash with cheap argon2id parameters, so the many sign-ins of
// the lockout and session tests take milliseconds; TestHashPasswordUses
// RFC9106Params checks the real ones (the constants) separately.
func init() { hashParams = testParams }

var testParams = params{time: 1, memory: 1024, threads: 1, keyLen: Argon2KeyLen}
