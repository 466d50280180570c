package synapse

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func runCheck(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunCheck(args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func TestRunCheckTutorial(t *testing.T) {
	root, _ := filepath.Abs(tutorialRoot)
	mountinfo := filepath.Join(t.TempDir(), "mountinfo")
	writeFile(t, mountinfo, "1 0 0:1 / / rw - overlay overlay rw\n")
	common := []string{"--root", root, "--workdir", "/", "--mountinfo", mountinfo, "--synapse-version", "1.160.0"}

	code, out, errOut := runCheck(t, MapEnv{}, append(common, tutorialConfig)...)
	if code != ExitFindings {
		t.Errorf("exit %d, want 1", code)
	}
	golden, _ := readFileString(tutorialGolden)
	if out != golden {
		t.Errorf("text output differs from the golden file:\n%s", out)
	}
	if !strings.Contains(errOut, "4 error(s), 11 warning(s) for Synapse 1.160.0") {
		t.Errorf("summary: %s", errOut)
	}

	code, out, _ = runCheck(t, MapEnv{}, append(common, "--format", "json", tutorialConfig)...)
	if code != ExitFindings {
		t.Errorf("json exit %d", code)
	}
	var arr []map[string]any
	if err := json.Unmarshal([]byte(out), &arr); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(arr) != 15 {
		t.Errorf("json has %d findings", len(arr))
	}
	for _, k := range []string{"file", "line", "col", "severity", "rule", "message", "since"} {
		if _, ok := arr[0][k]; !ok {
			t.Errorf("json object lacks %q: %v", k, arr[0])
		}
	}
	if arr[0]["rule"] != "registration-without-verification" || arr[0]["since"] != "1.56" || arr[0]["line"] != float64(2) {
		t.Errorf("first finding: %v", arr[0])
	}
	for _, s := range []string{TutorialRegistrationSharedSecret, TutorialMacaroonSecretKey, TutorialFormSecret} {
		if strings.Contains(out, s) {
			t.Error("json output contains a secret")
		}
	}

	// On 1.55 open registration is allowed: the rule is version-gated.
	_, out, _ = runCheck(t, MapEnv{}, "--root", root, "--workdir", "/", "--mountinfo", mountinfo, "--synapse-version", "1.55", tutorialConfig)
	if strings.Contains(out, "registration-without-verification") {
		t.Error("registration rule fired for 1.55")
	}
	// SYNAPSE_VERSION from the environment is used when no flag is given.
	_, out, errOut = runCheck(t, MapEnv{"SYNAPSE_VERSION": "1.55.0"}, "--root", root, "--workdir", "/", "--mountinfo", mountinfo, tutorialConfig)
	if strings.Contains(out, "registration-without-verification") || !strings.Contains(errOut, "Synapse 1.55.0") {
		t.Errorf("SYNAPSE_VERSION ignored: %s", errOut)
	}
}

func readFileString(p string) (string, error) {
	b, err := readFile(p)
	return string(b), err
}

func TestRunCheckExitCodes(t *testing.T) {
	root := testRoot(t, nil)
	mountinfo := filepath.Join(root, "mountinfo")
	writeFile(t, mountinfo, "1 0 0:1 / / rw - overlay overlay rw\n2 1 8:1 / /data rw - ext4 /dev/sda1 rw\n")
	clean := filepath.Join(root, "data", "homeserver.yaml")
	writeFile(t, clean, buildConfig(nil))
	warn := filepath.Join(root, "data", "warn.yaml")
	writeFile(t, warn, buildConfig(map[string]string{"uploads_path": "/data/uploads"}))
	secretCfg := filepath.Join(root, "data", "secret.yaml")
	writeFile(t, secretCfg, buildConfig(map[string]string{"form_secret": `"${FORM}"`}))
	common := []string{"--root", root, "--workdir", "/data", "--mountinfo", mountinfo}

	if code, out, errOut := runCheck(t, MapEnv{}, append(common, clean)...); code != 0 || out != "" {
		t.Errorf("clean: %d %q %s", code, out, errOut)
	}
	if code, out, _ := runCheck(t, MapEnv{}, append(common, "--format", "json", clean)...); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("clean json: %d %q", code, out)
	}
	if code, _, _ := runCheck(t, MapEnv{}, append(common, warn)...); code != 0 {
		t.Errorf("warnings only: exit %d, want 0", code)
	}
	if code, _, _ := runCheck(t, MapEnv{}, append(common, "--strict", warn)...); code != 1 {
		t.Errorf("warnings with --strict: exit %d, want 1", code)
	}
	// The default path comes from SYNAPSE_CONFIG_PATH.
	if code, _, errOut := runCheck(t, MapEnv{"SYNAPSE_CONFIG_PATH": warn}, append(common, "--strict")...); code != 1 || !strings.Contains(errOut, warn) {
		t.Errorf("SYNAPSE_CONFIG_PATH: %d %s", code, errOut)
	}
	// A short secret from the environment is reported by key, never by value.
	const envSecret = "tiny-secret-value"
	code, out, _ := runCheck(t, MapEnv{"FORM": envSecret}, append(common, secretCfg)...)
	if code != 0 || !strings.Contains(out, "secret-short: form_secret") || strings.Contains(out, envSecret) {
		t.Errorf("secret from env: %d %s", code, out)
	}
	// Unset variable: error at its line.
	code, out, _ = runCheck(t, MapEnv{}, append(common, secretCfg)...)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "secret.yaml:21:14: error template-unset-variable: FORM is not set") {
		t.Errorf("unset: %d %s", code, out)
	}
	// Missing file: an error finding, exit 1.
	if code, out, _ := runCheck(t, MapEnv{}, append(common, filepath.Join(root, "nope.yaml"))...); code != 1 || !strings.Contains(out, "config-unreadable") {
		t.Errorf("missing file: %d %s", code, out)
	}
	// Usage errors: 64; help: 0.
	for _, args := range [][]string{{"--format", "xml", clean}, {"--synapse-version", "banana", clean}, {"--no-such-flag"}} {
		if code, _, _ := runCheck(t, MapEnv{}, args...); code != ExitUsage {
			t.Errorf("RunCheck(%v) = %d, want 64", args, code)
		}
	}
	if code, _, _ := runCheck(t, MapEnv{"SYNAPSE_VERSION": "junk"}, clean); code != ExitUsage {
		t.Errorf("bad SYNAPSE_VERSION = %d, want 64", code)
	}
	code, _, errOut := runCheck(t, MapEnv{}, "-h")
	if code != 0 || !strings.Contains(errOut, "Usage: entrypoint check") {
		t.Errorf("-h: %d %s", code, errOut)
	}
}

func TestRunCheckListsRules(t *testing.T) {
	code, out, _ := runCheck(t, MapEnv{}, "--rules")
	if code != 0 || strings.Count(out, "\n") != len(Rules()) || !strings.Contains(out, "registration-without-verification") || !strings.Contains(out, ">=1.56") {
		t.Errorf("--rules: %d\n%s", code, out)
	}
}
