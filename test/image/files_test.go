package image_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// These tests need neither root nor Docker: they check the shape of the files people deploy with.

// node walks a decoded YAML document by keys and list indexes ("services", "synapse", 0, ...),
// failing the test with the path when something is missing or has another type.
func node(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping", path[:i])
			}
			v, ok := m[k]
			if !ok {
				t.Fatalf("%v: no key %q", path[:i], k)
			}
			cur = v
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: not a list with item %d", path[:i], k)
			}
			cur = l[k]
		}
	}
	return cur
}

func readYAML(t *testing.T, rel string) (map[string]any, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s does not parse: %v", rel, err)
	}
	return doc, string(b)
}

// knownVariables is every variable `entrypoint help` documents, from a fresh build.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	root := moduleRoot(t)
	bin := filepath.Join(t.TempDir(), "entrypoint")
	build := exec.Command("go", "build", "-o", bin, "./cmd/entrypoint")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "help").CombinedOutput()
	if err != nil {
		t.Fatalf("entrypoint help: %v\n%s", err, out)
	}
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]+)\s`).FindAllStringSubmatch(string(out), -1) {
		vars[m[1]] = true
	}
	if !vars["CONFIG_REPO"] || !vars["KEYBASE_USERNAME"] {
		t.Fatalf("cannot read the variable table of entrypoint help:\n%s", out)
	}
	return vars
}

// TestDeploySDL: docker/deploy.yaml is an Akash SDL 2.0 that keeps the image's entrypoint (args,
// never command), mounts a persistent beta2 volume at /data, prices in uact, and documents the
// entrypoint's variables with names it actually knows.
func TestDeploySDL(t *testing.T) {
	doc, text := readYAML(t, "docker/deploy.yaml")
	if v, ok := doc["version"].(string); !ok || v != "2.0" {
		t.Errorf("version = %#v, want the string \"2.0\"", doc["version"])
	}
	services := node(t, doc, "services").(map[string]any)
	if len(services) == 0 {
		t.Fatal("no services")
	}
	known := knownVariables(t)
	for name, s := range services {
		svc := s.(map[string]any)
		if img, _ := svc["image"].(string); !strings.HasPrefix(img, "ovrclk/synapse") {
			t.Errorf("services.%s.image = %q, want ovrclk/synapse", name, img)
		}
		if _, ok := svc["command"]; ok {
			t.Errorf("services.%s has command: it replaces the image's ENTRYPOINT (the supervisor); use args", name)
		}
		if _, ok := svc["args"].([]any); !ok {
			t.Errorf("services.%s has no args list", name)
		}
		if mount := node(t, svc, "params", "storage", "data", "mount"); mount != "/data" {
			t.Errorf("services.%s.params.storage.data.mount = %v, want /data", name, mount)
		}
		for _, e := range node(t, svc, "env").([]any) {
			kv, _ := e.(string)
			k, _, ok := strings.Cut(kv, "=")
			if !ok {
				t.Errorf("services.%s.env entry %q is not NAME=VALUE", name, kv)
			} else if !known[k] {
				t.Errorf("services.%s.env sets %s, which entrypoint help does not know", name, k)
			}
		}

		// The deployment's profile for this service must carry the persistent volume and uact.
		deployment := node(t, doc, "deployment", name).(map[string]any)
		for placement, d := range deployment {
			profile := node(t, d, "profile").(string)
			storage := node(t, doc, "profiles", "compute", profile, "resources", "storage").([]any)
			var root, data bool
			for _, st := range storage {
				m := st.(map[string]any)
				switch m["name"] {
				case nil:
					root = m["size"] != nil
				case "data":
					data = m["size"] == "10Gi" &&
						node(t, m, "attributes", "persistent") == true &&
						node(t, m, "attributes", "class") == "beta2"
				}
			}
			if !root || !data {
				t.Errorf("profile %s storage = %v: want a root size and `data` 10Gi persistent class beta2", profile, storage)
			}
			if denom := node(t, doc, "profiles", "placement", placement, "pricing", profile, "denom"); denom != "uact" {
				t.Errorf("pricing denom of %s/%s = %v, want uact", placement, profile, denom)
			}
		}
	}
	// Every variable the SDL mentions, set or commented, is one the entrypoint reads, and the
	// important ones are explained.
	for _, m := range regexp.MustCompile(`(?m)^\s*#?\s*- ([A-Z][A-Z0-9_]+)=`).FindAllStringSubmatch(text, -1) {
		if !known[m[1]] {
			t.Errorf("deploy.yaml mentions %s, which entrypoint help does not know", m[1])
		}
	}
	for _, v := range []string{"KEYBASE_USERNAME", "KEYBASE_PAPERKEY", "CONFIG_REPO", "CONFIG_SYNC_INTERVAL", "KEYBASE_NOTIFY", "SYNAPSE_SERVER_NAME"} {
		if !strings.Contains(text, v+"=") {
			t.Errorf("deploy.yaml does not explain %s", v)
		}
	}
}

// TestCompose: docker/compose.yaml runs the image with PostgreSQL, the password as a secret file,
// health checks on both, the image's entrypoint untouched and a 30 s stop grace period.
func TestCompose(t *testing.T) {
	doc, _ := readYAML(t, "docker/compose.yaml")
	syn := node(t, doc, "services", "synapse").(map[string]any)
	pg := node(t, doc, "services", "postgres").(map[string]any)
	if img, _ := syn["image"].(string); !strings.HasPrefix(img, "ovrclk/synapse") {
		t.Errorf("synapse image = %q", img)
	}
	for _, k := range []string{"command", "entrypoint"} {
		if _, ok := syn[k]; ok {
			t.Errorf("services.synapse sets %s: the image's entrypoint is the supervisor", k)
		}
	}
	if init, ok := syn["init"]; ok && init == true {
		t.Error("services.synapse sets init: true: the entrypoint is the init")
	}
	test := node(t, syn, "healthcheck", "test").([]any)
	if len(test) < 3 || test[0] != "CMD" || test[len(test)-1] != "healthcheck" {
		t.Errorf("synapse healthcheck.test = %v, want [CMD, /usr/local/bin/entrypoint, healthcheck]", test)
	}
	if node(t, syn, "stop_grace_period") != "30s" {
		t.Errorf("synapse stop_grace_period = %v, want 30s", syn["stop_grace_period"])
	}
	if node(t, syn, "depends_on", "postgres", "condition") != "service_healthy" {
		t.Error("synapse must wait for a healthy postgres")
	}
	if _, ok := node(t, pg, "healthcheck", "test").([]any); !ok {
		t.Error("postgres has no healthcheck test")
	}
	env := node(t, syn, "environment").(map[string]any)
	if _, ok := env["POSTGRES_PASSWORD"]; ok {
		t.Error("synapse gets POSTGRES_PASSWORD inline; use POSTGRES_PASSWORD_FILE and a secret")
	}
	if f, _ := env["POSTGRES_PASSWORD_FILE"].(string); !strings.HasPrefix(f, "/run/secrets/") {
		t.Errorf("synapse POSTGRES_PASSWORD_FILE = %q, want a secret under /run/secrets", f)
	}
	if f, _ := node(t, pg, "environment", "POSTGRES_PASSWORD_FILE").(string); !strings.HasPrefix(f, "/run/secrets/") {
		t.Errorf("postgres POSTGRES_PASSWORD_FILE = %q", f)
	}
	if node(t, doc, "secrets", "postgres_password", "file") == nil {
		t.Error("no postgres_password secret file")
	}
	var dataVolume bool
	for _, v := range node(t, syn, "volumes").([]any) {
		if s, _ := v.(string); strings.HasSuffix(s, ":/data") {
			dataVolume = true
		}
	}
	if !dataVolume {
		t.Error("synapse has no volume at /data")
	}
}

// TestDockerfile: the parts of the Dockerfile that Docker and Akash rely on, without building it.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ARG BASE=matrixdotorg/synapse:v\d+\.\d+\.\d+$`), // pinned, not latest
		regexp.MustCompile(`(?m)^FROM \$\{BASE\}$`),
		regexp.MustCompile(`(?m)^ARG KEYBASE_DEB_URL=https://prerelease\.keybase\.io/keybase_amd64\.deb$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/entrypoint"\]$`),
		regexp.MustCompile(`(?m)^\s+CMD \["/usr/local/bin/entrypoint", "healthcheck"\]$`),
		regexp.MustCompile(`(?m)^STOPSIGNAL SIGTERM$`),
		regexp.MustCompile(`(?m)^EXPOSE 8008$`),
		regexp.MustCompile(`(?m)^VOLUME /data$`),
		regexp.MustCompile(`(?m)^COPY bin/entrypoint /usr/local/bin/entrypoint$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if regexp.MustCompile(`(?m)^(ENV|ARG).*KEYBASE_ALLOW_ROOT`).MatchString(text) {
		t.Error("Dockerfile sets KEYBASE_ALLOW_ROOT: Keybase runs as the keybase user")
	}
	if regexp.MustCompile(`(?m)^CMD `).MatchString(text) {
		t.Error("Dockerfile has a CMD: Akash args and docker run arguments go to Synapse as they are")
	}
}

// TestExampleConfig: docker/example-config is what `entrypoint init` writes, with a README that
// says its secrets are examples to regenerate.
func TestExampleConfig(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "docker/example-config")
	for _, f := range []string{"homeserver.yaml", "matrix.example.org.log.config", "matrix.example.org.signing.key", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("example config: %v", err)
		}
	}
	doc, _ := readYAML(t, "docker/example-config/homeserver.yaml")
	if doc["server_name"] != "matrix.example.org" {
		t.Errorf("server_name = %v", doc["server_name"])
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"examples", "entrypoint init", "entrypoint check", "Never deploy them"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("example-config/README.md does not say %q", want)
		}
	}
}

// The example config is published, so check must refuse it as it stands.
func TestExampleConfigIsRefusedByCheck(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "entrypoint")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/entrypoint").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "check", "--workdir", "../../docker/example-config", "../../docker/example-config/homeserver.yaml")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || err == nil {
		t.Fatalf("check exit %d, want 1 (errors):\n%s", code, out)
	}
	for _, rule := range []string{"secret-published"} {
		if !strings.Contains(string(out), rule) {
			t.Errorf("check does not report %s:\n%s", rule, out)
		}
	}
}
