// Package synapsert gives tests a real Synapse runtime: a chroot tree made from Debian sid's
// matrix-synapse package by scripts/synapse-runtime.sh (PyPI is not reachable from the test
// machines, Debian's archive is). Run Synapse in it as root:
//
//	chroot TREE python3 -m synapse.app.homeserver -c /path/inside/tree.yaml
//
// The tree is cached on disk by the script; this package only makes sure a test process asks for it
// once.
package synapsert

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// scriptRelPath is where the recipe lives, relative to the module root.
const scriptRelPath = "scripts/synapse-runtime.sh"

// buildTree runs the recipe script at most once per test process and remembers its answer.
//
// It is the one package-level variable here, on purpose: the tree is a process-wide resource (tens
// of seconds to build, hundreds of MB), every test in a binary wants the same one, and sync.OnceValues
// makes the value immutable after the first call. The script itself is safe across processes (flock,
// atomic rename), so parallel test binaries share one build too.
var buildTree = sync.OnceValues(runScript)

// Tree returns the path of the Synapse runtime tree, building it on first use. Tests skip loudly when
// not root (the build uses mknod, running Synapse uses chroot) and fail with the script's stderr when
// the build fails.
func Tree(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (needs root): the Synapse runtime is a chroot tree with device nodes; CI runs as root")
	}
	tree, err := buildTree()
	if err != nil {
		t.Fatalf("synapse runtime: %v", err)
	}
	return tree
}

// Version reports the Synapse version installed in tree (e.g. "1.160.0"), read from the
// .synapse-version file the script writes; "" when the file is missing, so callers can log it
// without a failure path of their own.
func Version(tree string) string {
	b, err := os.ReadFile(filepath.Join(tree, ".synapse-version"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// runScript finds the recipe next to go.mod and runs it. Its stdout is the tree's path; its stderr
// (apt's progress) is kept only to explain a failure.
func runScript() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, scriptRelPath)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s: %w\nstderr:\n%s", script, err, stderr.String())
	}
	tree := strings.TrimSpace(stdout.String())
	if tree == "" || !filepath.IsAbs(tree) {
		return "", fmt.Errorf("run %s: expected the tree's absolute path on stdout, got %q\nstderr:\n%s", script, tree, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(tree, "usr", "bin", "python3")); err != nil {
		return "", fmt.Errorf("check tree %s: %w", tree, err)
	}
	return tree, nil
}

// moduleRoot walks up from the working directory (a test's package directory) to the directory
// holding go.mod, so the script is found however the tests are invoked.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
