package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret holds a secret value. Every way of printing or encoding it (fmt verbs, JSON, text,
// slog) yields "[redacted]" when it is set and "" when it is empty, so that it cannot end up in a
// log or an error by accident. Reveal is the one way to read it.
type Secret string

const redacted = "[redacted]"

func (s Secret) marker() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Reveal returns the secret value itself, for the code that signs, encrypts or connects with it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String returns the redaction marker.
func (s Secret) String() string { return s.marker() }

// GoString returns the redaction marker.
func (s Secret) GoString() string { return s.marker() }

// Format prints the redaction marker for every verb, including %#v, %q and %x.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.marker()) }

// MarshalJSON encodes the redaction marker.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.marker()) }

// MarshalText encodes the redaction marker.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.marker()), nil }

// LogValue makes slog print the redaction marker.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.marker()) }
