// Package crypt derives the keys mss-login needs from SECRET_KEY and encrypts stored secrets.
//
// One secret feeds several uses, so each use gets its own key through a distinct derivation
// (the original reused one key material with fixed salts everywhere):
//   - the SQLite file key: Argon2id at the original's per-level parameters;
//   - the field key (TOTP seeds, S3 credentials, …): HKDF-SHA256 with its own label.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Level is a SQLite encryption level: "" (none), "low", "standard" or "secure".
type Level string

// Levels lists the encryption levels in order of strength.
var Levels = []Level{"low", "standard", "secure"}

type argonParams struct {
	time, memoryKiB uint32
	threads         uint8
}

// The original's Argon2id parameters per level (MSS-Login utils: low, standard, secure).
var levelParams = map[Level]argonParams{
	"low":      {time: 2, memoryKiB: 64 * 1024, threads: 1},
	"standard": {time: 3, memoryKiB: 64 * 1024, threads: 4},
	"secure":   {time: 5, memoryKiB: 256 * 1024, threads: 2},
}

// ValidLevel reports whether l is a known level ("" included).
func ValidLevel(l Level) bool {
	_, ok := levelParams[l]
	return ok || l == ""
}

type dbKeyID struct {
	secret [32]byte // SHA-256 of the secret: the cache never holds the secret itself
	level  Level
}

var (
	dbKeyMu    sync.Mutex
	dbKeyCache = map[dbKeyID][]byte{}
)

// DatabaseKey returns the 32-byte SQLite file key for secret and level. Argon2id at the secure
// level takes 256 MiB and about a second, so the result is computed once per process and
// cached (keyed by a hash of the secret, never the secret).
func DatabaseKey(secret string, level Level) ([]byte, error) {
	p, ok := levelParams[level]
	if !ok {
		return nil, fmt.Errorf("unknown encryption level %q (want low, standard or secure)", level)
	}
	if secret == "" {
		return nil, errors.New("an encrypted database needs SECRET_KEY")
	}
	id := dbKeyID{secret: sha256.Sum256([]byte(secret)), level: level}
	dbKeyMu.Lock()
	defer dbKeyMu.Unlock()
	if k, ok := dbKeyCache[id]; ok {
		return k, nil
	}
	// The salt is fixed per level as in the original, so that a file made by one process
	// opens in another; the level in the salt makes a changed level fail to decrypt.
	salt := []byte("mss-login-db-key-v1" + string(level))
	k := argon2.IDKey([]byte(secret), salt, p.time, p.memoryKiB, p.threads, 32)
	dbKeyCache[id] = k
	// The KDF's memory (256 MiB at "secure") is garbage now. Left to the GC, it would stay
	// resident and set the next heap goal from a 256 MiB live heap, so the process would keep
	// hundreds of MiB for its whole life; collect it and give it back at once.
	debug.FreeOSMemory()
	return k, nil
}

// Fields encrypts and decrypts short stored secrets with AES-256-GCM. The associated data
// binds each ciphertext to where it is stored, so a value copied to another row fails.
type Fields struct {
	aead cipher.AEAD
}

const fieldPrefix = "v1:"

// NewFields derives the field key from secret with HKDF-SHA256 (label
// "mss-login-field-encryption-v1").
func NewFields(secret string) (*Fields, error) {
	if secret == "" {
		return nil, errors.New("field encryption needs SECRET_KEY")
	}
	key, err := SubKey(secret, "mss-login-field-encryption-v1")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Fields{aead: aead}, nil
}

// Seal encrypts plaintext for the place named by context (e.g. "users.totp_secret:<id>").
func (f *Fields) Seal(plaintext, context string) (string, error) {
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := f.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return fieldPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrDecrypt means a stored value could not be decrypted: SECRET_KEY changed, or the value was
// tampered with or moved. It never carries the value.
var ErrDecrypt = errors.New("cannot decrypt a stored secret: SECRET_KEY changed or the value was altered")

// Open decrypts a value made by Seal with the same context.
func (f *Fields) Open(sealed, context string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, fieldPrefix)
	if !ok {
		return "", ErrDecrypt
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < f.aead.NonceSize() {
		return "", ErrDecrypt
	}
	n := f.aead.NonceSize()
	plain, err := f.aead.Open(nil, data[:n], data[n:], []byte(context))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(plain), nil
}

// SubKey derives a 32-byte key for one use (label) from secret with HKDF-SHA256, so that no two
// uses of SECRET_KEY share key material (e.g. "mss-login-session-jwt-v1").
func SubKey(secret, label string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New(label + " needs SECRET_KEY")
	}
	return hkdf.Key(sha256.New, []byte(secret), nil, label, 32)
}
