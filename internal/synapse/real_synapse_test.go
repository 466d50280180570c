package synapse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"github.com/ovrclk/synapse-entrypoint/internal/testutil/synapsert"
)

// These tests hold the package to the real Synapse (Debian's package in a chroot tree): the version
// detection, and that `init` output, merged and rendered by this package, is a config the real
// server starts with and whose signing key it serves instead of minting its own.

func TestRealSynapseVersionDetection(t *testing.T) {
	tree := synapsert.Tree(t)
	want := synapsert.Version(tree)
	v, src, err := DetectVersion(MapEnv{}, []string{filepath.Join(tree, "usr/lib/python3/dist-packages")})
	if err != nil || v.IsZero() {
		t.Fatalf("DetectVersion in %s: %v %v", tree, v, err)
	}
	if v.String() != want {
		t.Errorf("detected %s from %s, the tree has %s", v, src, want)
	}
}

// realSetup writes `init` output into a fresh directory inside the tree plus an override file that
// moves the listener to a free loopback port, and returns the host dir, the in-chroot dir and port.
func realSetup(t *testing.T, tree string, override string) (hostDir, inDir string, port int) {
	t.Helper()
	hostDir, err := os.MkdirTemp(filepath.Join(tree, "tmp"), "synapse-config-")
	if err != nil {
		t.Fatalf("make work dir in tree: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
	inDir = "/tmp/" + filepath.Base(hostDir)
	files, err := GenerateInit(InitOptions{ServerName: "localhost", DataDir: inDir, ConfigDir: inDir + "/conf"})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteInit(filepath.Join(hostDir, "conf"), files); err != nil {
		t.Fatal(err)
	}
	port = testutil.FreePort(t)
	override = strings.ReplaceAll(override, "@DIR@", inDir)
	if !strings.Contains(override, "listeners:") {
		override = "listeners:\n  - port: ${TEST_PORT}\n    type: http\n    bind_addresses: ['127.0.0.1']\n    resources:\n      - names: [client, federation]\n" + override
	}
	writeFile(t, filepath.Join(hostDir, "conf.d", "50-test.yaml"), override)
	writeFile(t, filepath.Join(hostDir, "secret"), goodSecret1+"\n")
	return hostDir, inDir, port
}

// renderInTree loads, checks and renders the config the way the entrypoint will, and writes the
// rendered file into the tree.
func renderInTree(t *testing.T, tree, hostDir, inDir string, port int, env MapEnv) (string, Findings) {
	t.Helper()
	env["TEST_PORT"] = fmt.Sprint(port)
	cfg, err := Load([]string{filepath.Join(hostDir, "conf", "homeserver.yaml"), filepath.Join(hostDir, "conf.d")}, LoadOptions{Env: env, WorkDir: "/"})
	if err != nil {
		t.Fatal(err)
	}
	// Inside the tree everything lives under /tmp: treat it as the volume.
	mounts := []Mount{{MountPoint: "/", FSType: "overlay"}, {MountPoint: "/tmp", FSType: "ext4"}}
	fs := cfg.Validate(ValidateOptions{Root: tree, Version: mustVersion(synapsert.Version(tree)), Mounts: mounts})
	data, err := cfg.Render()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, joinFindings(fs))
	}
	if err := WriteRendered(filepath.Join(hostDir, "run", "homeserver.yaml"), data); err != nil {
		t.Fatal(err)
	}
	return inDir + "/run/homeserver.yaml", fs
}

func TestRealSynapseStartsWithInitConfig(t *testing.T) {
	tree := synapsert.Tree(t)
	hostDir, inDir, port := realSetup(t, tree, "max_upload_size: ${MAX_UPLOAD:-50M}\nadmin_contact: '${CONTACT}'\n")
	rendered, fs := renderInTree(t, tree, hostDir, inDir, port, MapEnv{"CONTACT": "mailto:ops@example.org # not: a comment"})
	if fs.HasErrors(false) || len(fs) != 1 || fs[0].Rule != "database-sqlite" {
		t.Fatalf("check of init output + override:\n%s", joinFindings(fs))
	}
	keyBefore, err := os.ReadFile(filepath.Join(hostDir, "conf", "localhost.signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := synapsert.Start(t, tree, rendered)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testutil.Eventually(t, 90*time.Second, "GET "+base+"/health → 200", func() bool {
		srv.FailIfExited(t)
		return httpOK(base + "/health")
	})
	// Synapse serves the key init generated: its format was accepted, no new identity was minted.
	keys, _ := ParseSigningKeys(keyBefore)
	resp, err := http.Get(base + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		VerifyKeys map[string]any `json:"verify_keys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := body.VerifyKeys[keys[0].KeyID()]; !ok || len(body.VerifyKeys) != 1 {
		t.Errorf("server keys %v, want only %s", body.VerifyKeys, keys[0].KeyID())
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(hostDir, "conf", "localhost.signing.key")); !bytes.Equal(keyAfter, keyBefore) {
		t.Error("Synapse rewrote the signing key")
	}
	srv.Signal(t, syscall.SIGTERM)
	if code := srv.Wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit after SIGTERM = %d\n%s", code, srv.Output())
	}
}

// TestRealSynapseAgreesOnErrors starts the real Synapse on configs that `check` calls errors: each
// must make Synapse refuse to start (exit 1), which is what justifies the error severity.
func TestRealSynapseAgreesOnErrors(t *testing.T) {
	tree := synapsert.Tree(t)
	const listener = "listeners:\n  - port: ${TEST_PORT}\n    type: http\n    bind_addresses: ['127.0.0.1']\n    resources:\n      - names: [%s]\n"
	cases := []struct {
		rule, override, stderr string
		files                  map[string]string // replaced files below conf/
	}{
		{"registration-without-verification", "enable_registration: true\n", "enable_registration", nil},
		{"registration-shared-secret-and-path", "registration_shared_secret_path: @DIR@/secret\n", "registration_shared_secret", nil},
		{"form-secret-and-path", "form_secret_path: @DIR@/secret\n", "form_secret", nil},
		{"duration-invalid", "redaction_retention_period: 500ms\n", "", nil},
		{"size-invalid", "max_upload_size: 50MB\n", "", nil},
		{"listener-resource-webclient", fmt.Sprintf(listener, "client, webclient"), "webclient", nil},
		{"listener-type-replication", fmt.Sprintf(listener, "client") + "  - port: 1\n    type: replication\n", "replication", nil},
		{"listener-tls-incomplete", "listeners:\n  - port: ${TEST_PORT}\n    type: http\n    tls: true\n    bind_addresses: ['127.0.0.1']\n    resources:\n      - names: [client]\n", "tls", nil},
		{"database-unknown-engine", "database:\n  name: mysql\n", "", nil},
		{"public-baseurl-invalid", "public_baseurl: 'https://example.org/?x=1'\n", "public_baseurl", nil},
		{"worker-replication-legacy", "worker_app: synapse.app.generic_worker\nworker_name: w1\nworker_replication_host: 127.0.0.1\n", "worker_replication_host", nil},
		{"log-file-removed", "log_file: @DIR@/homeserver.log\n", "log_file", nil},
		{"signing-key-invalid", "", "", map[string]string{"localhost.signing.key": "ed25519 a_AbC1 AAAA\n"}},
		{"log-config-structured", "", "", map[string]string{"localhost.log.config": "version: 1\nstructured: true\n"}},
		{"log-config-invalid", "", "", map[string]string{"localhost.log.config": "handlers: {}\n"}},
		{"log-handler-unwritable", "", "", map[string]string{"localhost.log.config": "version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: /nonexistent/dir/homeserver.log\nroot:\n  handlers: [file]\n"}},
		{"listener-port-or-path", "listeners:\n  - port: ${TEST_PORT}\n    path: @DIR@/s.sock\n    type: http\n", "", nil},
		{"listener-port-invalid", "listeners:\n  - port: \"${TEST_PORT}\"\n    type: http\n", "port", nil},
		{"listener-type-invalid", fmt.Sprintf(listener, "client") + "  - port: 1\n    type: websocket\n", "websocket", nil},
		{"listener-resource-unknown", fmt.Sprintf(listener, "client, gopher"), "gopher", nil},
		{"secret-path-missing", "form_secret: null\nform_secret_path: @DIR@/no-such-secret\n", "form_secret_path", nil},
		{"server-name-invalid", "server_name: 'https://example.org'\n", "server name", nil},
		{"database-and-databases", "databases:\n  main:\n    name: sqlite3\n    args: {database: '@DIR@/x.db'}\n", "database", nil},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			hostDir, inDir, port := realSetup(t, tree, tc.override)
			for name, content := range tc.files {
				writeFile(t, filepath.Join(hostDir, "conf", name), content)
			}
			rendered, fs := renderInTree(t, tree, hostDir, inDir, port, MapEnv{})
			found := false
			for _, f := range fs {
				found = found || (f.Rule == tc.rule && f.Severity == SeverityError)
			}
			if !found {
				t.Fatalf("check should report %s as an error:\n%s", tc.rule, joinFindings(fs))
			}
			srv := synapsert.Start(t, tree, rendered)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			testutil.Eventually(t, 90*time.Second, "Synapse to exit or answer /health", func() bool {
				return srv.Exited() || httpOK(base+"/health")
			})
			if !srv.Exited() {
				t.Fatalf("Synapse started although check reports %s as an error", tc.rule)
			}
			code := srv.Wait(t, time.Second)
			if code != 1 || !strings.Contains(srv.Output(), tc.stderr) {
				t.Errorf("Synapse exit %d (want 1, mentioning %q):\n%s", code, tc.stderr, srv.Output())
			}
		})
	}
}

func httpOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestRealSynapseStartsDespiteWarnings: what check only warns about does not stop Synapse, and a
// missing signing key is silently replaced by a new one (the reason for signing-key-missing).
func TestRealSynapseStartsDespiteWarnings(t *testing.T) {
	tree := synapsert.Tree(t)
	override := "acme:\n  enabled: false\nuploads_path: @DIR@/uploads\ntrusted_third_party_id_servers: [matrix.org]\n" +
		"search_all_users: true\nfederation_ip_range_blacklist: ['10.0.0.0/8']\nip_range_blocklist: ['10.0.0.0/8']\n" +
		"suppress_key_server_warning: false\nmacaroon_secret_key: short\n"
	hostDir, inDir, port := realSetup(t, tree, override)
	keyPath := filepath.Join(hostDir, "conf", "localhost.signing.key")
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	rendered, fs := renderInTree(t, tree, hostDir, inDir, port, MapEnv{})
	if fs.HasErrors(false) {
		t.Fatalf("only warnings expected:\n%s", joinFindings(fs))
	}
	for _, rule := range []string{"acme-removed", "uploads-path-removed", "trusted-third-party-id-servers-removed", "search-all-users-misplaced",
		"federation-ip-range-blacklist-deprecated", "ip-range-blocklist-not-a-key", "trusted-key-servers-matrix-org", "secret-short", "signing-key-missing"} {
		if !hasRule(fs, rule) {
			t.Errorf("check should warn %s", rule)
		}
	}
	srv := synapsert.Start(t, tree, rendered)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testutil.Eventually(t, 90*time.Second, "GET "+base+"/health → 200", func() bool {
		srv.FailIfExited(t)
		return httpOK(base + "/health")
	})
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("Synapse did not mint a signing key: %v", err)
	}
	if _, err := ParseSigningKeys(data); err != nil {
		t.Errorf("the key Synapse minted does not parse: %v", err)
	}
	// Now the key exists but is not the one the operator had: with the database present, a missing
	// key is an error.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	_, fs = renderInTree(t, tree, hostDir, inDir, port, MapEnv{})
	if !hasRule(fs, "signing-key-missing-existing-db") {
		t.Errorf("with the sqlite database present a missing key must be an error:\n%s", joinFindings(fs))
	}
}
