package synapse

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// SigningKey is one ed25519 key from a Synapse signing key file. Seed is secret.
type SigningKey struct {
	Version string // the key id without the algorithm, e.g. "a_AbC1"
	Seed    []byte // 32 bytes
}

// KeyID is the key's Matrix id, e.g. "ed25519:a_AbC1".
func (k SigningKey) KeyID() string { return "ed25519:" + k.Version }

// String formats the key as one line of Synapse's signing key file.
func (k SigningKey) String() string {
	return fmt.Sprintf("ed25519 %s %s", k.Version, base64.RawStdEncoding.EncodeToString(k.Seed))
}

// ParseSigningKeys parses a Synapse signing key file: one key per line, each
// "ed25519 <version> <unpadded base64 of a 32-byte seed>". Like Synapse's read_signing_keys it skips
// blank lines, requires every other line to parse and at least one key. Errors name the line
// number, never the key material.
func ParseSigningKeys(data []byte) ([]SigningKey, error) {
	var keys []SigningKey
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, err := parseSigningKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("parse signing key line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("parse signing key: no key in the file")
	}
	return keys, nil
}

// parseSigningKeyLine parses one key line.
func parseSigningKeyLine(line string) (SigningKey, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return SigningKey{}, fmt.Errorf("want 3 fields \"ed25519 a_XXXX <base64 seed>\", got %d", len(f))
	}
	if f[0] != "ed25519" {
		return SigningKey{}, fmt.Errorf("algorithm %q is not ed25519", truncate(f[0], 20))
	}
	if !validKeyVersion(f[1]) {
		return SigningKey{}, fmt.Errorf("key version %q must be letters, digits and _", truncate(f[1], 20))
	}
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[2], "="))
	if err != nil {
		return SigningKey{}, fmt.Errorf("seed is not base64")
	}
	if len(seed) != 32 {
		return SigningKey{}, fmt.Errorf("seed is %d bytes, want 32", len(seed))
	}
	return SigningKey{Version: f[1], Seed: seed}, nil
}

// validKeyVersion checks a key version the way Matrix key ids allow.
func validKeyVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

const keyIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// GenerateSigningKey makes a new key like Synapse's generate_signing_key: version "a_" plus four
// random characters from [a-zA-Z0-9] and a random 32-byte seed. rand must be a CSPRNG
// (crypto/rand.Reader); it is a parameter so tests are reproducible.
func GenerateSigningKey(rand io.Reader) (SigningKey, error) {
	id, err := randomString(rand, 4, keyIDAlphabet)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key id: %w", err)
	}
	seed := make([]byte, 32)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key seed: %w", err)
	}
	return SigningKey{Version: "a_" + id, Seed: seed}, nil
}

// randomString draws n characters uniformly from alphabet (rejection sampling avoids modulo bias).
func randomString(rand io.Reader, n int, alphabet string) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(out) < n {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
