package synapse

import (
	"encoding/base64"
	"os"
	"strings"
	"unicode/utf8"
)

// The three secrets published in the Akash "Private Matrix Messaging Server" tutorial. They are
// public (anyone who read the tutorial knows them), so a config that still carries one is
// compromised: registration_shared_secret lets anybody create admin accounts.
const (
	TutorialRegistrationSharedSecret = "FdvX6=Zl^criYPibk+=VkyS:_f*K#=kl#NZ0d;BE#3kL1YNSuE"
	TutorialMacaroonSecretKey        = "Oyy*=k5Ogwkx;oCZx7e;j@bC_iD,P^H-O3#AnszmRFEMm_lxu6"
	TutorialFormSecret               = "P-qZnkpZpT4Y-kAH7ycH0;a#zVz#q#:.-0CD=0*B7;.3#zI&Yq"
)

// The secrets of docker/example-config, generated once and published in this repository as an
// example: a config that copied them is as compromised as one with the tutorial's.
const (
	ExampleRegistrationSharedSecret = "B4AYCEn2CQrXnOB2gJ1hWSaBAp7hENOW1Tb2abcl6r7p412cPG"
	ExampleMacaroonSecretKey        = "iQDCIWSJudzH8l3KqDdnCX4i2cVOfopt4fo842MKEX64WBqIZf"
	ExampleFormSecret               = "5Bepvrr5uPZMijwUkOSAAfhS5xcCYxoGRliifIIcBcDnzLedzH"
	// ExampleSigningKeySeed is the example's ed25519 seed (unpadded base64): with it anyone can
	// sign events as the server.
	ExampleSigningKeySeed = "41i+9goBMVhGW1Awjbmrh4kAZcMDC4xZ8hARIvt7+Gg"
)

// MinSecretLength is the shortest secret the validator accepts without a warning.
const MinSecretLength = 32

// isPublishedSecret reports whether s is one of the tutorial's or the example config's secrets.
func isPublishedSecret(s string) bool {
	switch strings.TrimSpace(s) {
	case TutorialRegistrationSharedSecret, TutorialMacaroonSecretKey, TutorialFormSecret,
		ExampleRegistrationSharedSecret, ExampleMacaroonSecretKey, ExampleFormSecret:
		return true
	}
	return false
}

// isPublishedSigningKey reports whether one of keys is the example config's signing key.
func isPublishedSigningKey(keys []SigningKey) bool {
	for _, k := range keys {
		if base64.RawStdEncoding.EncodeToString(k.Seed) == ExampleSigningKeySeed {
			return true
		}
	}
	return false
}

// secretSpec is one Synapse secret that can be given inline or through a *_path file.
type secretSpec struct {
	parent    string // "" for top level, "redis" for redis.password
	key       string
	pathSince string // release that introduced key_path
	pairRule  string // rule for "both inline and _path set"
}

func secretSpecs() []secretSpec {
	return []secretSpec{
		{"", "registration_shared_secret", "1.67", "registration-shared-secret-and-path"},
		{"", "macaroon_secret_key", "1.122", "macaroon-secret-key-and-path"},
		{"", "form_secret", "1.126", "form-secret-and-path"},
		{"", "worker_replication_secret", "1.126", "worker-replication-secret-and-path"},
		{"", "turn_shared_secret", "1.116", "turn-shared-secret-and-path"},
		{"redis", "password", "1.117", "redis-password-and-path"},
	}
}

// checkSecrets: inline vs *_path, *_path files, published and short secrets. Messages name the
// key, never the value.
func (v *validator) checkSecrets() {
	for _, s := range secretSpecs() {
		name := s.key
		var inline, path, pathKey ref
		if s.parent == "" {
			inline, path, pathKey = v.c.top(s.key), v.c.top(s.key+"_path"), v.c.topKey(s.key+"_path")
		} else {
			p := v.c.top(s.parent)
			name = s.parent + "." + s.key
			inline, path, pathKey = p.get(s.key), p.get(s.key+"_path"), p.keyNode(s.key+"_path")
		}
		if !inline.isNull() && !path.isNull() {
			v.report(s.pairRule, pathKey, "%s and %s_path are both set and Synapse refuses to start: keep only one", name, name)
		}
		if !inline.isNull() {
			if val, ok := inline.str(); ok {
				v.checkSecretValue(name, inline, val)
			}
		}
		if path.isNull() {
			continue
		}
		if !v.versionAtLeast(s.pathSince) {
			v.reportSince("secret-path-unsupported", "", path, "%s_path needs Synapse %s or later (this is %s) and is ignored: put the secret in %s or upgrade", name, s.pathSince, v.opts.Version, name)
			continue
		}
		p, _ := path.str()
		data, err := v.opts.ReadFile(v.hostPath(v.c.resolve(p)))
		switch {
		case err != nil:
			v.reportSince("secret-path-missing", s.pathSince, path, "%s_path names %s, which cannot be read (%v): create it or fix the path", name, p, errReason(err))
		case strings.TrimSpace(string(data)) == "":
			v.reportSince("secret-path-missing", s.pathSince, path, "%s_path names %s, which is empty: write the secret into it", name, p)
		default:
			v.checkSecretValue(name+"_path", path, strings.TrimSpace(string(data)))
		}
	}
}

// checkSecretValue flags a published or short secret, and a literal secret whose "$$" templating
// halves (Synapse's own generator uses punctuation, so a generated secret can contain "$$").
func (v *validator) checkSecretValue(name string, at ref, val string) {
	if raw, ok := v.c.raw[at.n]; ok && strings.Contains(raw, "$$") {
		v.report("template-dollar-escape", at, "%s contains \"$$\", which templating turns into one \"$\": if the secret really contains \"$$\" write \"$$$$\", or move it into a file and use ${VAR_FILE}-style templating", name)
	}
	if isPublishedSecret(val) {
		v.report("secret-published", at, "%s is a secret published in the Matrix tutorial or this project's example config, so anyone can use it: generate a new one (e.g. openssl rand -base64 48) and keep it out of public repositories", name)
		return
	}
	if n := utf8.RuneCountInString(val); n < MinSecretLength {
		v.report("secret-short", at, "%s is only %d characters long: use at least %d random characters", name, n, MinSecretLength)
	}
}

// checkSigningKey: the key must parse, and a missing key means a new server identity.
func (v *validator) checkSigningKey() {
	if v.c.Has("signing_key") { // inline key: no file to lose, but it must parse
		inline := v.c.top("signing_key")
		s, _ := inline.str()
		if _, err := ParseSigningKeys([]byte(s)); err != nil {
			v.report("signing-key-invalid", inline, "signing_key is not in Synapse's format \"ed25519 a_XXXX <base64 seed>\" (%v)", err)
		}
		return
	}
	p := v.c.SigningKeyPath()
	if p == "" {
		return
	}
	at := v.c.top("signing_key_path")
	data, err := v.opts.ReadFile(v.hostPath(p))
	if err == nil {
		keys, perr := ParseSigningKeys(data)
		switch {
		case perr != nil:
			v.report("signing-key-invalid", at, "signing key %s is not in Synapse's format \"ed25519 a_XXXX <base64 seed>\" (%v): restore the original key file", p, perr)
		case isPublishedSigningKey(keys):
			v.report("signing-key-published", at, "signing key %s is the one published in this project's example config, so anyone can sign events as your server: generate your own with `entrypoint init` before the server federates", p)
		}
		return
	}
	if !os.IsNotExist(err) {
		v.report("signing-key-invalid", at, "signing key %s cannot be read (%v): fix its permissions", p, errReason(err))
		return
	}
	engine, dbPath := v.c.Database()
	if engine == DatabaseSQLite && dbPath != "" && v.exists(dbPath) {
		v.report("signing-key-missing-existing-db", at, "signing key %s is missing but the database %s already exists: Synapse would mint a new server identity and break federation; restore the key from backup", p, dbPath)
		return
	}
	if !v.versionAtLeast("1.67") {
		v.report("signing-key-required", at, "signing key %s is missing and Synapse %s will not start: restore it, or create one with `entrypoint init` or --generate-keys", p, v.opts.Version)
		return
	}
	extra := ""
	if engine != DatabaseSQLite {
		extra = " If this server already has data in its database, this means a new identity and broken federation: restore the key from backup."
	}
	v.report("signing-key-missing", at, "signing key %s is missing: Synapse will silently create a new one; generate it now (entrypoint init) and keep it on a volume and in your config repo.%s", p, extra)
}
