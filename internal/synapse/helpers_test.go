package synapse

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// kv is one top-level key and its YAML value text (a leading newline makes it a block).
type kv struct{ key, val string }

const (
	goodSecret1 = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rS1uV3"
	goodSecret2 = "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6Ll5Kk4"
	goodSecret3 = "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c2v3b4"
	goodKeyLine = "ed25519 a_AbC1 nJ4Dw6bI3ITw7Wq2GgTvKXqBrjLRtaBNFeM7vbyJZ6I"
	deleteKey   = "<delete>"
)

// baseConfig is a configuration that produces no finding at all with the base test environment:
// PostgreSQL, everything under the /data volume, strong secrets, one http listener.
func baseConfig() []kv {
	return []kv{
		{"server_name", `"example.org"`},
		{"report_stats", "false"},
		{"listeners", "\n  - port: 8008\n    type: http\n    tls: false\n    bind_addresses: ['0.0.0.0']\n    resources:\n      - names: [client, federation]"},
		{"database", "\n  name: psycopg2\n  args:\n    user: synapse\n    password: pw\n    host: db"},
		{"media_store_path", "/data/media_store"},
		{"signing_key_path", "/data/example.org.signing.key"},
		{"log_config", "/data/log.config"},
		{"registration_shared_secret", `"` + goodSecret1 + `"`},
		{"macaroon_secret_key", `"` + goodSecret2 + `"`},
		{"form_secret", `"` + goodSecret3 + `"`},
		{"trusted_key_servers", "\n  - server_name: matrix.org"},
		{"suppress_key_server_warning", "true"},
	}
}

// buildConfig applies overrides to the base config (deleteKey removes a key; new keys are appended
// in sorted order) and returns the YAML text.
func buildConfig(overrides map[string]string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, e := range baseConfig() {
		seen[e.key] = true
		v, ok := overrides[e.key]
		if !ok {
			v = e.val
		}
		if v == deleteKey {
			continue
		}
		b.WriteString(e.key + ": " + v + "\n")
	}
	var extra []string
	for k := range overrides {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		b.WriteString(k + ": " + overrides[k] + "\n")
	}
	return b.String()
}

// testRoot makes a filesystem root with the base config's log config and signing key, plus extra
// files (path relative to the root → content; content deleteKey removes a base file).
func testRoot(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	all := map[string]string{
		"data/log.config":              "version: 1\nhandlers:\n  console:\n    class: logging.StreamHandler\nroot:\n  handlers: [console]\n",
		"data/example.org.signing.key": goodKeyLine + "\n",
	}
	for k, v := range files {
		all[k] = v
	}
	for name, content := range all {
		if content == deleteKey {
			continue
		}
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// containerMounts is a typical container: overlay root, /data a volume.
func containerMounts() []Mount {
	return []Mount{{MountPoint: "/", FSType: "overlay", Source: "overlay"}, {MountPoint: "/data", FSType: "ext4", Source: "/dev/sdb"}}
}

// checkText writes config text into a fresh root at /data/homeserver.yaml, loads and validates it.
func checkText(t testing.TB, text string, files map[string]string, env Env, version string) Findings {
	t.Helper()
	root := testRoot(t, files)
	cfgPath := filepath.Join(root, "data", "homeserver.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{cfgPath}, LoadOptions{Env: env, WorkDir: "/data"})
	if err != nil {
		t.Fatal(err)
	}
	var v Version
	if version != "" {
		if v, err = ParseVersion(version); err != nil {
			t.Fatal(err)
		}
	}
	return cfg.Validate(ValidateOptions{Version: v, Root: root, Mounts: containerMounts()})
}

// hasRule reports whether a finding with rule id is present.
func hasRule(fs Findings, id string) bool {
	for _, f := range fs {
		if f.Rule == id {
			return true
		}
	}
	return false
}
