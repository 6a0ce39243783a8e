package crypt

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestDatabaseKeyDiffersBySecretAndLevel(t *testing.T) {
	a, err := DatabaseKey("secret-one-secret-one-secret-one", "low")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DatabaseKey("secret-two-secret-two-secret-two", "low")
	c, _ := DatabaseKey("secret-one-secret-one-secret-one", "standard")
	again, _ := DatabaseKey("secret-one-secret-one-secret-one", "low")
	if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, c) || !bytes.Equal(a, again) {
		t.Fatalf("keys must be 32 bytes, stable, and differ by secret and level")
	}
	if _, err := DatabaseKey("x", "extreme"); err == nil {
		t.Fatal("unknown level accepted")
	}
	if _, err := DatabaseKey("", "low"); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func TestFieldsRoundTripAndBinding(t *testing.T) {
	f, err := NewFields("a-secret-key-that-is-long-enough-1234")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := f.Seal("JBSWY3DPEHPK3PXP", "users.totp_secret:u1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatal("plaintext visible in ciphertext")
	}
	got, err := f.Open(sealed, "users.totp_secret:u1")
	if err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if _, err := f.Open(sealed, "users.totp_secret:u2"); err != ErrDecrypt {
		t.Fatalf("value moved to another row must not decrypt, got %v", err)
	}
	other, _ := NewFields("another-secret-key-that-is-long-enough")
	if _, err := other.Open(sealed, "users.totp_secret:u1"); err != ErrDecrypt {
		t.Fatalf("other key must not decrypt, got %v", err)
	}
	if _, err := f.Open("garbage", "x"); err != ErrDecrypt {
		t.Fatalf("garbage: %v", err)
	}
	s2, _ := f.Seal("JBSWY3DPEHPK3PXP", "users.totp_secret:u1")
	if s2 == sealed {
		t.Fatal("nonce reuse: two seals are identical")
	}
}

// The 256 MiB the "secure" key derivation works in must not stay with the process (the
// chart's containers run in a few hundred MiB, and the manager's target is 200 MiB).
func TestDatabaseKeyGivesMemoryBack(t *testing.T) {
	if _, err := DatabaseKey("memory-test-secret-0123456789-abcdefghij", "secure"); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if kept := ms.HeapInuse + ms.HeapIdle - ms.HeapReleased; kept > 64<<20 {
		t.Fatalf("the process keeps %d MiB of heap after deriving the key", kept>>20)
	}
}
