package synapse

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestSigningKeyRoundTrip(t *testing.T) {
	k, err := GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	line := k.String()
	if !regexp.MustCompile(`^ed25519 a_[a-zA-Z0-9]{4} [A-Za-z0-9+/]{43}$`).MatchString(line) {
		t.Fatalf("key line %q is not in Synapse's format", line)
	}
	keys, err := ParseSigningKeys([]byte(line + "\n"))
	if err != nil || len(keys) != 1 || keys[0].Version != k.Version || !bytes.Equal(keys[0].Seed, k.Seed) {
		t.Fatalf("round trip: %v %v", keys, err)
	}
	if keys[0].KeyID() != "ed25519:"+k.Version {
		t.Error(keys[0].KeyID())
	}
	// Padded base64 is tolerated, as Python's decoder does.
	padded := "ed25519 a_AbC1 " + base64.StdEncoding.EncodeToString(k.Seed)
	if _, err := ParseSigningKeys([]byte(padded)); err != nil {
		t.Errorf("padded: %v", err)
	}
}

func TestParseSigningKeysErrorsHideKeyMaterial(t *testing.T) {
	secret := "nJ4Dw6bI3ITw7Wq2GgTvKXqBrjLRtaBNFeM7vbyJZ"
	for _, in := range []string{"", "\n", "ed25519 a_x " + secret, "ed25519 a_x " + secret + "AAAA extra", "ed25519 a-x! " + secret + "6I"} {
		_, err := ParseSigningKeys([]byte(in))
		if err == nil {
			t.Errorf("ParseSigningKeys(%q) should fail", in)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

func TestRandomStringUniformAlphabet(t *testing.T) {
	s, err := randomString(rand.Reader, 2000, "ab")
	if err != nil || len(s) != 2000 || strings.Trim(s, "ab") != "" {
		t.Fatalf("%q %v", s[:10], err)
	}
	if n := strings.Count(s, "a"); n < 800 || n > 1200 {
		t.Errorf("biased: %d a's in 2000", n)
	}
}
