package synapse

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// allowedInitWarnings are the only findings a fresh init may produce: sqlite, and volume warnings
// that depend on where the test runs.
func allowedInitWarning(rule string) bool {
	switch rule {
	case "database-sqlite", "database-not-on-volume", "media-store-not-on-volume", "signing-key-not-on-volume":
		return true
	}
	return false
}

func TestInitOutputPassesCheck(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "data")
			files, err := GenerateInit(InitOptions{ServerName: "matrix.example.org", Database: db})
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteInit(dir, files); err != nil {
				t.Fatal(err)
			}
			env := MapEnv{}
			if db == "postgres" {
				env["POSTGRES_PASSWORD"] = "a password: with # and \"quotes\""
			}
			cfg, err := Load([]string{filepath.Join(dir, "homeserver.yaml")}, LoadOptions{Env: env, WorkDir: "/"})
			if err != nil {
				t.Fatal(err)
			}
			for _, mounts := range [][]Mount{containerMounts(), {{MountPoint: "/", FSType: "overlay"}}} {
				fs := cfg.Validate(ValidateOptions{Root: root, Mounts: mounts})
				for _, f := range fs {
					if f.Severity == SeverityError || !allowedInitWarning(f.Rule) {
						t.Errorf("init output: %s", f)
					}
				}
				if db == "sqlite" && !hasRule(fs, "database-sqlite") {
					t.Error("sqlite warning expected")
				}
			}
			// On a container with /data mounted, the only finding is the sqlite warning.
			fs := cfg.Validate(ValidateOptions{Root: root, Mounts: containerMounts()})
			if want := map[string]int{"sqlite": 1, "postgres": 0}[db]; len(fs) != want {
				t.Errorf("want %d findings, got:\n%s", want, joinFindings(fs))
			}
			l, ok := cfg.HTTPListener()
			if !ok || l.Port != 8008 || l.ProbeHost() != "127.0.0.1" {
				t.Errorf("listener %+v", l)
			}
			if db == "postgres" {
				out, err := cfg.Render()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(out, []byte(`password: "a password: with # and \"quotes\""`)) || !bytes.Contains(out, []byte("port: 5432\n")) {
					t.Errorf("rendered postgres config:\n%s", out)
				}
				// Without POSTGRES_PASSWORD the :? message tells what to do.
				cfg2, _ := Load([]string{filepath.Join(dir, "homeserver.yaml")}, LoadOptions{Env: MapEnv{}, WorkDir: "/"})
				fs := cfg2.Validate(ValidateOptions{Root: root, Mounts: containerMounts()})
				if len(fs) != 1 || fs[0].Rule != ruleTemplateUnset || !strings.Contains(fs[0].Message, "set POSTGRES_PASSWORD") {
					t.Errorf("without POSTGRES_PASSWORD:\n%s", joinFindings(fs))
				}
			}
		})
	}
}

func TestInitFiles(t *testing.T) {
	files, err := GenerateInit(InitOptions{ServerName: "example.org", ReportStats: true, DataDir: "/srv/synapse", ConfigDir: "/config"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]InitFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	hs := string(byName["homeserver.yaml"].Data)
	for _, want := range []string{
		`database: "/srv/synapse/homeserver.db"`, `media_store_path: "/srv/synapse/media_store"`,
		`log_config: "/config/example.org.log.config"`, `signing_key_path: "/config/example.org.signing.key"`,
		"report_stats: true", "enable_registration: false", "suppress_key_server_warning: true",
	} {
		if !strings.Contains(hs, want) {
			t.Errorf("homeserver.yaml lacks %q:\n%s", want, hs)
		}
	}
	secretRE := regexp.MustCompile(`(?m)^(registration_shared_secret|macaroon_secret_key|form_secret): "([A-Za-z0-9]+)"$`)
	ms := secretRE.FindAllStringSubmatch(hs, -1)
	if len(ms) != 3 {
		t.Fatalf("secrets: %v", ms)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if len(m[2]) < 32 || seen[m[2]] {
			t.Errorf("weak or repeated secret for %s", m[1])
		}
		seen[m[2]] = true
	}
	key := byName["example.org.signing.key"]
	if key.Mode != 0o600 {
		t.Errorf("key mode %v", key.Mode)
	}
	if _, err := ParseSigningKeys(key.Data); err != nil {
		t.Error(err)
	}
	if !strings.Contains(string(byName["example.org.log.config"].Data), "ext://sys.stdout") {
		t.Error("log config must log to stdout")
	}
	// Two runs never share secrets.
	files2, _ := GenerateInit(InitOptions{ServerName: "example.org"})
	if bytes.Equal(files2[0].Data, files[0].Data) || bytes.Equal(files2[2].Data, key.Data) {
		t.Error("secrets repeat between runs")
	}
	for _, bad := range []InitOptions{{ServerName: "https://x"}, {ServerName: "x.org", Database: "mysql"}, {ServerName: "x.org", DataDir: "rel"}} {
		if _, err := GenerateInit(bad); err == nil {
			t.Errorf("GenerateInit(%+v) should fail", bad)
		}
	}
}

func TestInitNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.org.signing.key"), "precious\n")
	files, err := GenerateInit(InitOptions{ServerName: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	err = WriteInit(dir, files)
	if !IsExist(err) || !strings.Contains(err.Error(), "example.org.signing.key") {
		t.Fatalf("want ExistError naming the key, got %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("nothing may be written when a target exists, dir has %d entries", len(entries))
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "example.org.signing.key")); string(data) != "precious\n" {
		t.Error("existing file changed")
	}
	// Through the CLI: exit 73 and the file is listed.
	var out, errOut bytes.Buffer
	if code := RunInit([]string{"--server-name", "example.org", dir}, &out, &errOut, MapEnv{}); code != ExitCantCreate {
		t.Errorf("exit %d, want %d", code, ExitCantCreate)
	}
	if !strings.Contains(errOut.String(), "example.org.signing.key") {
		t.Errorf("stderr should list the existing file: %s", errOut.String())
	}
}

func TestRunInitThenCheck(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	var out, errOut bytes.Buffer
	if code := RunInit([]string{"--server-name", "example.org", "--report-stats", dir}, &out, &errOut, MapEnv{}); code != 0 {
		t.Fatalf("init exit %d: %s", code, errOut.String())
	}
	st, err := os.Stat(filepath.Join(dir, "example.org.signing.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "homeserver.yaml")); st.Mode().Perm() != 0o600 {
		t.Errorf("homeserver.yaml mode %v", st.Mode().Perm())
	}
	mountinfo := filepath.Join(root, "mountinfo")
	writeFile(t, mountinfo, "1 0 0:1 / / rw - overlay overlay rw\n2 1 8:1 / /data rw - ext4 /dev/sda1 rw\n")
	out.Reset()
	errOut.Reset()
	code := RunCheck([]string{"--root", root, "--workdir", "/", "--mountinfo", mountinfo, "--strict=false", filepath.Join(dir, "homeserver.yaml")}, &out, &errOut, MapEnv{})
	if code != 0 {
		t.Fatalf("check exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 1 || !strings.Contains(out.String(), "warning database-sqlite") {
		t.Errorf("want only the sqlite warning, got:\n%s", out.String())
	}
	// Usage errors.
	for _, args := range [][]string{{}, {"--server-name", "x.org", "a", "b"}, {"--server-name", "x.org", "--database", "mysql"}, {"--bogus"}, {"--server-name", "http://x"}} {
		if code := RunInit(args, &out, &errOut, MapEnv{}); code != ExitUsage {
			t.Errorf("RunInit(%v) = %d, want 64", args, code)
		}
	}
	if code := RunInit([]string{"-h"}, &out, &errOut, MapEnv{}); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	// SYNAPSE_SERVER_NAME is the default server name.
	if code := RunInit([]string{filepath.Join(root, "env")}, &out, &errOut, MapEnv{"SYNAPSE_SERVER_NAME": "env.example"}); code != 0 {
		t.Errorf("init from env: %d %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(root, "env", "env.example.signing.key")); err != nil {
		t.Error(err)
	}
}
