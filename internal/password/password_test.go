package password

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashAndVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple 1!")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || !IsHash(h) {
		t.Fatalf("hash format: %s", h)
	}
	if r, err := Verify(h, "correct horse battery staple 1!"); err != nil || !r.OK || r.Rehash {
		t.Fatalf("right password: %+v %v", r, err)
	}
	if r, _ := Verify(h, "correct horse battery staple 1?"); r.OK {
		t.Fatal("wrong password accepted")
	}
	if _, err := Verify("plaintext", "x"); err != ErrUnknownFormat {
		t.Fatalf("unknown format: %v", err)
	}
	if h2, _ := Hash("correct horse battery staple 1!"); h2 == h {
		t.Fatal("same salt twice")
	}
}

func TestBcryptFromTheOriginal(t *testing.T) {
	raw := "S3cret!pass"
	b, _ := bcrypt.GenerateFromPassword([]byte(raw), bcrypt.MinCost)
	if r, _ := Verify(string(b), raw); !r.OK || !r.Rehash {
		t.Fatalf("bcrypt: %+v (must match and ask for a re-hash)", r)
	}
	if r, _ := Verify(string(b), raw+"x"); r.OK {
		t.Fatal("wrong password accepted")
	}

	// Older versions hashed the sanitised password: the raw one still logs in, then re-hashes.
	special := "pa'ss-w(o)rd=1;&x<y>"
	legacy, _ := bcrypt.GenerateFromPassword([]byte(LegacySanitize(special)), bcrypt.MinCost)
	if r, _ := Verify(string(legacy), special); !r.OK || !r.Rehash {
		t.Fatalf("legacy sanitised hash: %+v", r)
	}

	// Over 72 bytes: the original's bcrypt saw only the first 72; compared explicitly.
	long := strings.Repeat("a", 72) + "!1tail"
	lh, _ := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if r, _ := Verify(string(lh), long); !r.OK {
		t.Fatal("long password hashed by the original does not verify")
	}
	// A new hash of a long password uses every byte.
	nh, _ := Hash(long)
	if r, _ := Verify(nh, long[:72]); r.OK {
		t.Fatal("argon2id ignored bytes after 72")
	}
}

func TestLegacySanitize(t *testing.T) {
	// Expected values computed with the original's Python code (steps before bleach, which is
	// the identity on text without <, > and &).
	cases := map[string]string{
		"plain1!":                "plain1!",
		"  spaced  ":             "spaced",
		"a'b":                    `a#x27\b`,
		"x-y":                    `x\-y`,
		"a=b":                    `a\=b`,
		"(p)":                    `\(p\)`,
		"a&b":                    `aamp\b`,
		"<b>":                    `lt\bgt\`,
		"a;b|c`d":                `a\bc\d`,
		"javascript:alert(1)":    `alert\(1\)`,
		"line\r\nbreak":          "linebreak",
		"caf\u0065\u0301":        "caf\u00e9",
		`quote"d`:                `quotequot\d`,
		"JavaScript:x vbscript:": "x ",
		"pa'ss-w(o)rd=1;&x<y>":   `pa#x27\ss\-w\(o\)rd\=1\amp\xlt\ygt\`,
	}
	for in, want := range cases {
		if got := LegacySanitize(in); got != want {
			t.Errorf("LegacySanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzVerifyNeverPanics(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "pw")
	f.Add("$2b$12$abcdefghijklmnopqrstuuK2V8S4Eh5kW3WcS1p5dB3s9yPj9cC6", "pw")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if strings.Contains(hash, "m=") {
			return // arbitrary memory parameters would make the fuzzer slow, not find bugs
		}
		_, _ = Verify(hash, pw)
		_ = LegacySanitize(pw)
	})
}
