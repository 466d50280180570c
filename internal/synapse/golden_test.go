package synapse

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/tutorial/check.golden")

const (
	tutorialConfig = "testdata/tutorial/homeserver.yaml"
	tutorialRoot   = "testdata/tutorial/root"
	tutorialGolden = "testdata/tutorial/check.golden"
	tutorialHost   = "matrix.dentacoin.dev"
)

// tutorialMounts is the tutorial's deployment: the config repo cloned into the container, no volume.
func tutorialMounts() []Mount {
	return []Mount{{MountPoint: "/", FSType: "overlay", Source: "overlay"}}
}

// checkTutorial loads and validates the tutorial config the way the golden file expects.
func checkTutorial(tb testing.TB) Findings {
	cfg, err := Load([]string{tutorialConfig}, LoadOptions{WorkDir: "/"})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.Validate(ValidateOptions{Root: tutorialRoot, Mounts: tutorialMounts()})
}

func TestTutorialGolden(t *testing.T) {
	fs := checkTutorial(t)
	got := joinFindings(fs)
	if *update {
		if err := os.WriteFile(tutorialGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(tutorialGolden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTutorialGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("findings differ from %s (go test -run TestTutorialGolden -update to accept):\n--- got\n%s--- want\n%s", tutorialGolden, got, want)
	}
	// The facts measured on Synapse 1.160 (shared notes) must all be there.
	for _, rule := range []string{"registration-without-verification", "acme-removed", "uploads-path-removed",
		"trusted-third-party-id-servers-removed", "search-all-users-misplaced", "trusted-key-servers-matrix-org",
		"secret-published", "database-not-on-volume", "media-store-not-on-volume"} {
		if !hasRule(fs, rule) {
			t.Errorf("tutorial config should trigger %s", rule)
		}
	}
	for _, s := range []string{TutorialRegistrationSharedSecret, TutorialMacaroonSecretKey, TutorialFormSecret} {
		if strings.Contains(got, s) {
			t.Error("findings print a secret value")
		}
	}
	// With the registration fixed, Synapse 1.160 starts: no error left except the published secrets.
	cfg, _ := Load([]string{tutorialConfig}, LoadOptions{WorkDir: "/"})
	for _, f := range cfg.Validate(ValidateOptions{Root: tutorialRoot, Mounts: tutorialMounts(), Version: Version{1, 160, 0}}) {
		if f.Severity == SeverityError && f.Rule != "registration-without-verification" && f.Rule != "secret-published" {
			t.Errorf("unexpected error on 1.160: %s", f)
		}
	}
}

// tutorialMarkdown finds the published tutorial next to the repository, if present.
func tutorialMarkdown() string {
	for _, p := range []string{"/work/shared/tutorial/private-matrix-messaging-server.md", "../../../shared/tutorial/private-matrix-messaging-server.md"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func TestTutorialTestdataMatchesMarkdown(t *testing.T) {
	md := tutorialMarkdown()
	if md == "" {
		t.Skip("tutorial markdown not present (shared/tutorial); testdata cannot be re-extracted")
	}
	data, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)cat > data/homeserver\.yaml <<EOF\n(.*?)\nEOF\n`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: heredoc for data/homeserver.yaml not found", md)
	}
	// The heredoc is unquoted: the shell substitutes ${HOST} (the only expansion it contains).
	want := strings.ReplaceAll(string(m[1]), "${HOST}", tutorialHost) + "\n"
	if strings.ContainsAny(string(m[1]), "`\\") || strings.Count(string(m[1]), "$") != strings.Count(string(m[1]), "${HOST}") {
		t.Fatal("the heredoc now contains other shell expansions: update this extraction")
	}
	got, err := os.ReadFile(tutorialConfig)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the heredoc in %s", tutorialConfig, md)
	}
	// The secrets embedded as constants are the tutorial's.
	for _, s := range []string{TutorialRegistrationSharedSecret, TutorialMacaroonSecretKey, TutorialFormSecret} {
		if !bytes.Contains(m[1], []byte(s)) {
			t.Errorf("constant secret not found in the tutorial")
		}
	}
}

func BenchmarkCheckTutorial(b *testing.B) {
	abs, err := filepath.Abs(tutorialConfig)
	if err != nil {
		b.Fatal(err)
	}
	root, _ := filepath.Abs(tutorialRoot)
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load([]string{abs}, LoadOptions{WorkDir: "/"})
		if err != nil {
			b.Fatal(err)
		}
		if fs := cfg.Validate(ValidateOptions{Root: root, Mounts: tutorialMounts()}); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
}

func BenchmarkCheckTutorialWithMountinfo(b *testing.B) {
	root, _ := filepath.Abs(tutorialRoot)
	for b.Loop() {
		cfg, err := Load([]string{tutorialConfig}, LoadOptions{WorkDir: "/"})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Validate(ValidateOptions{Root: root})
	}
}
