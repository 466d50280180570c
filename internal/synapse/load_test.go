package synapse

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestLoadMergesLikeSynapse(t *testing.T) {
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	writeFile(t, filepath.Join(dir, "homeserver.yaml"), "server_name: a.example\nreport_stats: false\ncaches:\n  global_factor: 1.0\nform_secret: x\n")
	writeFile(t, filepath.Join(confd, "20-late.yaml"), "server_name: c.example\n")
	writeFile(t, filepath.Join(confd, "10-early.yaml"), "server_name: b.example\nextra: 1\ncaches:\n  global_factor: 2.0\n")
	writeFile(t, filepath.Join(confd, "ignored.yml"), "server_name: wrong.example\n")
	writeFile(t, filepath.Join(confd, "sub.yaml", "x.yaml"), "server_name: wrong2.example\n")
	cfg, err := Load([]string{filepath.Join(dir, "homeserver.yaml"), confd}, LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{filepath.Join(dir, "homeserver.yaml"), filepath.Join(confd, "10-early.yaml"), filepath.Join(confd, "20-late.yaml")}
	if strings.Join(cfg.Files(), "\n") != strings.Join(wantFiles, "\n") {
		t.Fatalf("files = %v, want %v", cfg.Files(), wantFiles)
	}
	if got := cfg.ServerName(); got != "c.example" {
		t.Errorf("server_name = %q, want the last file's", got)
	}
	// Shallow merge: caches is replaced as a whole by the later file.
	n, file := cfg.Node("caches")
	if file != filepath.Join(confd, "10-early.yaml") || n.Content[1].Value != "2.0" {
		t.Errorf("caches from %s = %v", file, n.Content[1].Value)
	}
	// Keys keep the position of their first appearance.
	if got := strings.Join(cfg.Keys(), ","); got != "server_name,report_stats,caches,form_secret,extra" {
		t.Errorf("keys = %s", got)
	}
	// A finding about a key points into the file that set it.
	fs := cfg.Validate(ValidateOptions{Mounts: containerMounts()})
	for _, f := range fs {
		if f.Rule == "secret-short" && f.File != filepath.Join(dir, "homeserver.yaml") {
			t.Errorf("secret-short in %s", f.File)
		}
	}
}

func TestLoadFileProblemsAreFindings(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), "server_name: [unclosed\nreport_stats: true\n")
	writeFile(t, filepath.Join(dir, "list.yaml"), "- a\n- b\n")
	writeFile(t, filepath.Join(dir, "empty.yaml"), "# nothing\n")
	writeFile(t, filepath.Join(dir, "two.yaml"), "a: 1\n---\nb: 2\n")
	paths := []string{filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "list.yaml"), filepath.Join(dir, "empty.yaml"), filepath.Join(dir, "two.yaml")}
	cfg, err := Load(paths, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs := cfg.Validate(ValidateOptions{})
	want := map[string]string{
		"missing.yaml": ruleConfigUnreadable, "bad.yaml": ruleYAMLSyntax, "list.yaml": ruleYAMLNotMapping,
		"empty.yaml": ruleYAMLNotMapping, "two.yaml": ruleYAMLSyntax,
	}
	got := map[string]string{}
	for _, f := range fs {
		got[filepath.Base(f.File)] = f.Rule
		if f.Severity != SeverityError {
			t.Errorf("%s: severity %s", f, f.Severity)
		}
	}
	for file, rule := range want {
		if got[file] != rule {
			t.Errorf("%s: rule %q, want %q (all: %v)", file, got[file], rule, fs)
		}
	}
	if _, err := Load(nil, LoadOptions{}); err == nil {
		t.Error("Load with no paths must fail")
	}
	if _, err := cfg.Render(); err == nil {
		t.Error("Render must refuse a config whose files did not load")
	}
}

func TestAccessors(t *testing.T) {
	text := `server_name: example.org
report_stats: false
listeners:
  - port: 9000
    type: metrics
  - path: /run/synapse.sock
    type: http
  - port: 8008
    type: http
    bind_addresses: ['::', '0.0.0.0']
    resources:
      - names: [client]
      - names: [federation]
database:
  name: sqlite3
  args:
    database: state/homeserver.db
log_config: log.config
signing_key_path: /keys/k
tls_certificate_path: /tls/crt
`
	cfg := loadText(t, "hs.yaml", text, nil)
	l, ok := cfg.HTTPListener()
	if !ok || l.Port != 8008 || l.ProbeHost() != "::1" || strings.Join(l.Resources, ",") != "client,federation" {
		t.Errorf("HTTPListener = %+v, %v", l, ok)
	}
	engine, path := cfg.Database()
	if engine != DatabaseSQLite || path != "/data/state/homeserver.db" {
		t.Errorf("Database = %s %s", engine, path)
	}
	if cfg.MediaStorePath() != "/data/media_store" {
		t.Errorf("MediaStorePath = %s (Synapse's default is media_store in the working directory)", cfg.MediaStorePath())
	}
	if cfg.LogConfigPath() != "/data/log.config" || cfg.SigningKeyPath() != "/keys/k" || cfg.ServerName() != "example.org" {
		t.Errorf("paths: %s %s %s", cfg.LogConfigPath(), cfg.SigningKeyPath(), cfg.ServerName())
	}
	if got := strings.Join(cfg.ReloadableFiles(), ","); got != "/data/log.config,/tls/crt" {
		t.Errorf("ReloadableFiles = %s", got)
	}
	if (Listener{}).ProbeHost() != "127.0.0.1" || (Listener{BindAddresses: []string{"10.1.2.3"}}).ProbeHost() != "10.1.2.3" {
		t.Error("ProbeHost defaults")
	}
	cfg = loadText(t, "hs.yaml", "server_name: x\ndatabase:\n  name: psycopg2\n", nil)
	if _, ok := cfg.HTTPListener(); ok {
		t.Error("no listener expected")
	}
	if e, p := cfg.Database(); e != DatabasePostgres || p != "" {
		t.Errorf("Database = %s %q", e, p)
	}
}

func TestRenderAndReload(t *testing.T) {
	base := "server_name: ${NAME}\nreport_stats: false\ndefaults: &d\n  x: 1\nuse: *d\ncaches:\n  global_factor: 0.5\n"
	a := loadText(t, "a.yaml", base, MapEnv{"NAME": "example.org"})
	out, err := a.Render()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if m["server_name"] != "example.org" || m["use"].(map[string]any)["x"] != 1 {
		t.Errorf("rendered: %v", m)
	}
	if strings.Contains(string(out), "*d") {
		t.Errorf("aliases should be expanded in rendered output:\n%s", out)
	}

	same := loadText(t, "b.yaml", "# comment\nserver_name: 'example.org'\nreport_stats: false\ndefaults: {x: 1}\nuse: {x: 1}\ncaches: {global_factor: 0.5}\n", nil)
	if ok, keys := ReloadableDiff(a, same); !ok || len(keys) != 0 {
		t.Errorf("equal configs: %v %v", ok, keys)
	}
	cachesOnly := loadText(t, "c.yaml", strings.Replace(base, "0.5", "2.0", 1), MapEnv{"NAME": "example.org"})
	if ok, keys := ReloadableDiff(a, cachesOnly); !ok || strings.Join(keys, ",") != "caches" {
		t.Errorf("caches change: %v %v", ok, keys)
	}
	other := loadText(t, "d.yaml", base+"enable_registration: false\n", MapEnv{"NAME": "other.org"})
	if ok, keys := ReloadableDiff(a, other); ok || strings.Join(keys, ",") != "enable_registration,server_name" {
		t.Errorf("restart change: %v %v", ok, keys)
	}
	if ok, _ := ReloadableDiff(nil, a); ok {
		t.Error("nil config must not be reloadable")
	}
}

func TestWriteRendered(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "run", "homeserver.yaml")
	if err := WriteRendered(p, []byte("a: 1\n")); err != nil {
		t.Fatal(err)
	}
	if err := WriteRendered(p, []byte("a: 2\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if data, _ := os.ReadFile(p); string(data) != "a: 2\n" {
		t.Errorf("content %q", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	// Inside a git worktree: refused.
	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if git, err := exec.LookPath("git"); err == nil {
		if out, err := exec.Command(git, "init", "-q", repo).CombinedOutput(); err != nil {
			t.Fatalf("git init: %v %s", err, out)
		}
	} else {
		writeFile(t, filepath.Join(repo, ".git", "HEAD"), "ref: refs/heads/main\n")
	}
	if err := WriteRendered(filepath.Join(repo, "sub", "homeserver.yaml"), []byte("a: 1\n")); err == nil || !strings.Contains(err.Error(), "worktree") {
		t.Errorf("writing inside a git worktree must fail, got %v", err)
	}
}

func TestLoadEmptyInputs(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load([]string{dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fs := cfg.Validate(ValidateOptions{}); !hasRule(fs, ruleConfigUnreadable) || !fs.HasErrors(false) {
		t.Errorf("empty directory: %v", fs)
	}
	writeFile(t, filepath.Join(dir, "hs.yaml"), "{}\n")
	cfg, _ = Load([]string{filepath.Join(dir, "hs.yaml")}, LoadOptions{})
	if fs := cfg.Validate(ValidateOptions{Mounts: containerMounts()}); !hasRule(fs, "server-name-missing") || !hasRule(fs, "report-stats-missing") {
		t.Errorf("empty mapping: %v", fs)
	}
	writeFile(t, filepath.Join(dir, "keys.yaml"), "server_name: x.org\nreport_stats: false\n? [a, b]\n: c\n")
	cfg, _ = Load([]string{filepath.Join(dir, "keys.yaml")}, LoadOptions{})
	if fs := cfg.Validate(ValidateOptions{Mounts: containerMounts()}); !hasRule(fs, ruleYAMLSyntax) {
		t.Errorf("unhashable key: %v", fs)
	}
}

func TestRenderPinsDefaultSigningKeyPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf", "homeserver.yaml"), "server_name: example.org\nreport_stats: false\n")
	cfg, err := Load([]string{filepath.Join(dir, "conf", "homeserver.yaml")}, LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "conf", "example.org.signing.key")
	if cfg.SigningKeyPath() != want {
		t.Errorf("SigningKeyPath = %s, want Synapse's default %s", cfg.SigningKeyPath(), want)
	}
	out, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `signing_key_path: "`+want+`"`) {
		t.Errorf("rendered config does not pin the key path:\n%s", out)
	}
	inline := loadText(t, "hs.yaml", "server_name: example.org\nsigning_key: ed25519 a_x AAAA\n", nil)
	if inline.SigningKeyPath() != "" {
		t.Errorf("inline key: SigningKeyPath = %q", inline.SigningKeyPath())
	}
}
