// Package password owns how mss-login treats a password: it hashes and verifies them, prices
// a failed check (FailureCost), and holds the policy for a new one (CheckPolicy). New hashes
// are argon2id (OWASP parameters); bcrypt hashes made by the original MSS-Login verify too,
// including its legacy form where the password had been run through an input sanitizer
// before hashing, and report that they should be replaced by a fresh argon2id hash.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters: the OWASP Password Storage Cheat Sheet's first option (19 MiB, t=2, p=1).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// MaxLength bounds a password (as the original: 4096 characters), so that hashing cost is bounded.
const MaxLength = 4096

// bcryptLimit is the number of bytes bcrypt reads; the rest of a longer password is ignored by
// the algorithm itself.
const bcryptLimit = 72

// ErrUnknownFormat means a stored hash is neither argon2id nor bcrypt.
var ErrUnknownFormat = errors.New("unknown password hash format")

// Hash returns an argon2id hash of pw in the PHC string format.
func Hash(pw string) (string, error) {
	if len(pw) > MaxLength {
		return "", fmt.Errorf("password longer than %d bytes", MaxLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// IsHash reports whether s looks like a hash this package verifies (so that a Secret holding a
// hash is stored as is rather than hashed again).
func IsHash(s string) bool {
	return strings.HasPrefix(s, "$argon2id$") || isBcrypt(s)
}

func isBcrypt(s string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(s, p) && len(s) == 60 {
			return true
		}
	}
	return false
}

// Result is the outcome of Verify.
type Result struct {
	OK bool
	// Rehash is true when the password matched a hash that should be replaced by Hash(pw):
	// bcrypt, a legacy sanitised match, or argon2id with weaker parameters.
	Rehash bool
}

// Verify checks pw against hash in time that does not depend on where they differ.
func Verify(hash, pw string) (Result, error) {
	if len(pw) > MaxLength {
		return Result{}, nil
	}
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		ok, weak, err := verifyArgon2(hash, pw)
		return Result{OK: ok, Rehash: ok && weak}, err
	case isBcrypt(hash):
		if verifyBcrypt(hash, pw) {
			return Result{OK: true, Rehash: true}, nil
		}
		// The original's older versions hashed the sanitised form of the password.
		if legacy := LegacySanitize(pw); legacy != pw && verifyBcrypt(hash, legacy) {
			return Result{OK: true, Rehash: true}, nil
		}
		return Result{}, nil
	}
	return Result{}, ErrUnknownFormat
}

// verifyBcrypt compares explicitly on the first 72 bytes: that is what bcrypt hashed when the
// original stored a longer password, and x/crypto refuses longer input instead of truncating.
// New hashes are argon2id, which has no such limit.
func verifyBcrypt(hash, pw string) bool {
	b := []byte(pw)
	if len(b) > bcryptLimit {
		b = b[:bcryptLimit]
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), b) == nil
}

func verifyArgon2(hash, pw string) (ok, weak bool, err error) {
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 {
		return false, false, ErrUnknownFormat
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, false, ErrUnknownFormat
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<22 || t > 64 {
		return false, false, ErrUnknownFormat
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 || len(want) > 64 {
		return false, false, ErrUnknownFormat
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	weak = m < argonMemoryKiB || t < argonTime
	return ok, weak, nil
}

// dummyHash is verified against when a user does not exist, so that an unknown username costs
// the same time as a known one.
var dummyHash, _ = Hash("mss-login-timing-equaliser")

// VerifyDummy spends the time of one Verify without a real hash.
func VerifyDummy(pw string) {
	_, _ = Verify(dummyHash, pw)
}

// Kind names a hash's algorithm and cost parameters ("bcrypt $2b$12", "$argon2id$v=19$m=19456,t=2,p=1"):
// hashes of one kind cost the same to verify. "" for a hash this package does not verify.
func Kind(hash string) string {
	switch {
	case isBcrypt(hash):
		return "bcrypt " + hash[:6]
	case strings.HasPrefix(hash, "$argon2id$"):
		if parts := strings.Split(hash, "$"); len(parts) == 6 {
			return "$argon2id$" + parts[2] + "$" + parts[3]
		}
	}
	return ""
}

// legacyProbe is a wrong password that also takes bcrypt's second, legacy-sanitised check: the
// slowest way for a password to fail.
const legacyProbe = "mss-login;timing(probe)"

// FailureCost is how long a wrong password takes to fail against a hash of hash's kind (same
// algorithm and parameters), measured on a hash made for the purpose: the slowest of three runs.
func FailureCost(hash string) (time.Duration, error) {
	var probe string
	switch {
	case isBcrypt(hash):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return 0, err
		}
		b, err := bcrypt.GenerateFromPassword([]byte("mss-login-timing-probe"), cost)
		if err != nil {
			return 0, err
		}
		probe = string(b)
	case strings.HasPrefix(hash, "$argon2id$"):
		parts := strings.Split(hash, "$")
		if len(parts) != 6 {
			return 0, ErrUnknownFormat
		}
		salt := make([]byte, argonSaltLen)
		_, _ = rand.Read(salt)
		probe = strings.Join(append(parts[:4:4], base64.RawStdEncoding.EncodeToString(salt),
			base64.RawStdEncoding.EncodeToString(make([]byte, argonKeyLen))), "$")
	default:
		return 0, ErrUnknownFormat
	}
	var slowest time.Duration
	for range 3 {
		start := time.Now()
		if _, err := Verify(probe, legacyProbe); err != nil {
			return 0, err
		}
		slowest = max(slowest, time.Since(start))
	}
	return slowest, nil
}

// CheckPolicy applies the original's rules for a new password: at least 8 characters, a digit
// and a special character, no spaces or control characters, at most MaxLength. The error names
// the rule broken.
func CheckPolicy(p string) error {
	if len(p) < 8 || len(p) > MaxLength {
		return errors.New("password: 8 to 4096 characters")
	}
	var digit, special bool
	for _, r := range p {
		switch {
		case unicode.IsSpace(r):
			return errors.New("password: no spaces")
		case unicode.IsControl(r):
			return errors.New("password: no control characters")
		case unicode.IsDigit(r):
			digit = true
		case strings.ContainsRune("!@#$%^&*()_+-=[]{};':\"\\|,.<>?/`~", r):
			special = true
		}
	}
	if !digit || !special {
		return errors.New("password: needs a digit and a special character")
	}
	return nil
}
