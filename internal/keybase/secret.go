package keybase

import (
	"fmt"
	"log/slog"

	"go.uber.org/zap/zapcore"
)

// redacted is what every formatter prints instead of a secret.
const redacted = "[REDACTED]"

// Secret holds the paper key. It is a struct with an unexported field rather than a string type so
// that no conversion, reflection-based encoder (fmt's %v on a plain struct, encoding/json, zap's
// reflection) or careless string(x) can reveal it: every formatter this program uses is given a
// method that prints [REDACTED]. Only Reveal returns the value, and this package calls it in exactly
// one place: the environment of the `keybase oneshot` process.
type Secret struct{ v string }

// NewSecret wraps a secret value.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret. Its only caller puts it into one child's environment.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no secret was given (cmd/ then does not start Keybase at all).
func (s Secret) IsZero() bool { return s.v == "" }

// String keeps the secret out of %s, %v, %q and any Stringer-based logger.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return `keybase.Secret("` + s.String() + `")` }

// Format makes every fmt verb (%d, %x, %+v, ...) print the redacted form, not only the Stringer ones.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON keeps the secret out of JSON (configuration dumps, zap's JSON reflection).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText keeps the secret out of text encoders (YAML, TOML, map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalLogObject makes zap.Any / zap.Object log only whether a secret is set.
func (s Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("set", s.v != "")
	if s.v != "" {
		enc.AddString("value", redacted)
	}
	return nil
}

// LogValue keeps the secret out of log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
