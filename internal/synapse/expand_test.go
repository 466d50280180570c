package synapse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestExpand(t *testing.T) {
	env := MapEnv{"A": "alpha", "EMPTY": "", "COLON": "a: b", "DOLLAR": "p$ss"}
	files := map[string]string{"/run/secrets/s": "from-file\n"}
	readFile := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
	env["S_FILE"] = "/run/secrets/s"
	env["MISSING_FILE"] = "/run/secrets/none"
	tests := []struct {
		in, want string
		problem  string // rule id of the expected problem, "" for none
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-y", "x-alpha-y", ""},
		{"${A:-d}", "alpha", ""},
		{"${UNSET:-default}", "default", ""},
		{"${EMPTY:-default}", "default", ""},
		{"${EMPTY-default}", "", ""},
		{"${UNSET-default}", "default", ""},
		{"${UNSET:-${A}}", "alpha", ""},
		{"${UNSET:-a:b#c}", "a:b#c", ""},
		{"${COLON}", "a: b", ""},
		{"${DOLLAR}", "p$ss", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"cost $5", "cost $5", ""},
		{"trailing $", "trailing $", ""},
		{"${S}", "from-file", ""},
		{"${UNSET}", "", ruleTemplateUnset},
		{"${UNSET:?set UNSET please}", "", ruleTemplateUnset},
		{"${EMPTY:?must not be empty}", "", ruleTemplateUnset},
		{"${EMPTY?only unset fails}", "", ""},
		{"${MISSING}", "", ruleTemplateFile},
		{"${A", "${A", ruleTemplateSyntax},
		{"${1A}", "", ruleTemplateSyntax},
		{"${}", "", ruleTemplateSyntax},
		{"${A:+x}", "", ruleTemplateSyntax},
	}
	for _, tt := range tests {
		got, probs := Expand(tt.in, env, readFile)
		if got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
		switch {
		case tt.problem == "" && len(probs) > 0:
			t.Errorf("Expand(%q): unexpected problems %v", tt.in, probs)
		case tt.problem != "" && (len(probs) == 0 || !strings.HasPrefix(probs[0], tt.problem+":")):
			t.Errorf("Expand(%q): problems %v, want %s", tt.in, probs, tt.problem)
		}
	}
	// The :? message is what the user wrote.
	_, probs := Expand("${PW:?set POSTGRES_PASSWORD}", env, readFile)
	if len(probs) != 1 || !strings.Contains(probs[0], "set POSTGRES_PASSWORD") {
		t.Errorf("the :? message should be reported, got %v", probs)
	}
}

// loadText loads YAML text from an in-memory file named name.
func loadText(t testing.TB, name, text string, env Env) *Config {
	t.Helper()
	cfg, err := Load([]string{name}, LoadOptions{Env: env, WorkDir: "/data", ReadFile: func(p string) ([]byte, error) {
		if p == name {
			return []byte(text), nil
		}
		return os.ReadFile(p)
	}, ReadDir: func(string) ([]os.DirEntry, error) { return nil, errors.New("not a directory") }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTemplatingKeepsStructure(t *testing.T) {
	nasty := map[string]string{
		"COLON":   "key: value",
		"HASH":    "abc #not a comment",
		"QUOTES":  `it's "quoted"`,
		"NEWLINE": "line1\nline2: x\n- item",
		"FLOW":    "[a, b]",
		"BOOLISH": "yes",
		"PORT":    "8448",
		"ANCHOR":  "*alias &anchor !tag",
	}
	text := "server_name: ${COLON}\n" +
		"a: \"${HASH}\"\n" +
		"b: '${QUOTES}'\n" +
		"c: ${NEWLINE}\n" +
		"d: ${FLOW}\n" +
		"e: ${BOOLISH}\n" +
		"port: ${PORT}\n" +
		"f: prefix-${ANCHOR}\n" +
		"g: |\n  literal ${HASH}\n"
	cfg := loadText(t, "hs.yaml", text, MapEnv(nasty))
	if len(cfg.findings) != 0 {
		t.Fatalf("unexpected findings: %v", cfg.findings)
	}
	out, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("rendered YAML does not parse: %v\n%s", err, out)
	}
	want := map[string]any{
		"server_name": "key: value",
		"a":           "abc #not a comment",
		"b":           `it's "quoted"`,
		"c":           "line1\nline2: x\n- item",
		"d":           "[a, b]",
		"e":           "yes",
		"port":        8448,
		"f":           "prefix-*alias &anchor !tag",
		"g":           "literal abc #not a comment\n",
		// Pinned by Render: Synapse's default next to the config (here /data/hs.yaml).
		"signing_key_path": "/data/key: value.signing.key",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %#v, want %#v\nrendered:\n%s", k, got[k], w, out)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rendered has %d keys, want %d:\n%s", len(got), len(want), out)
	}
	// "yes" must be quoted, or Python's YAML 1.1 would read a bool.
	if !strings.Contains(string(out), `e: "yes"`) {
		t.Errorf("boolean-looking string not quoted:\n%s", out)
	}
}

func TestTemplateFileVariant(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "pw")
	writeFile(t, secret, "s3cr3t: with # and 'quotes'\n")
	cfg := loadText(t, "hs.yaml", "password: ${DB_PASSWORD}\nother: ${OTHER:-x}\n", MapEnv{"DB_PASSWORD_FILE": secret})
	if len(cfg.findings) != 0 {
		t.Fatalf("unexpected findings: %v", cfg.findings)
	}
	n, _ := cfg.Node("password")
	if n.Value != "s3cr3t: with # and 'quotes'" || n.Kind != yaml.ScalarNode {
		t.Fatalf("password = %q", n.Value)
	}
	// VAR wins over VAR_FILE.
	cfg = loadText(t, "hs.yaml", "password: ${DB_PASSWORD}\n", MapEnv{"DB_PASSWORD": "direct", "DB_PASSWORD_FILE": secret})
	if n, _ := cfg.Node("password"); n.Value != "direct" {
		t.Fatalf("VAR should win over VAR_FILE, got %q", n.Value)
	}
}

func TestTemplateUnsetIsFindingWithPosition(t *testing.T) {
	text := "server_name: example.org\nreport_stats: false\ndatabase:\n  args:\n    password: \"${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}\"\n    user: ${PGUSER}\n"
	cfg := loadText(t, "/cfg/hs.yaml", text, MapEnv{})
	fs := cfg.Validate(ValidateOptions{Mounts: containerMounts(), Root: t.TempDir()})
	var got []string
	for _, f := range fs {
		if strings.HasPrefix(f.Rule, "template-") {
			got = append(got, f.String())
		}
	}
	want := []string{
		"/cfg/hs.yaml:5:15: error template-unset-variable: POSTGRES_PASSWORD is not set: set POSTGRES_PASSWORD",
		"/cfg/hs.yaml:6:11: error template-unset-variable: PGUSER is not set (nor PGUSER_FILE): set it, or write ${PGUSER:-default}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := cfg.Render(); err == nil {
		t.Fatal("Render must refuse a config with unresolved templates")
	}
}

func TestTemplatesNotExpandedInKeys(t *testing.T) {
	cfg := loadText(t, "hs.yaml", "${A}: ${A}\n", MapEnv{"A": "v"})
	if !cfg.Has("${A}") {
		t.Fatalf("keys must stay literal, got %v", cfg.Keys())
	}
}
