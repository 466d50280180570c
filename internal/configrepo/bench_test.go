package configrepo

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap"
)

// benchRepo builds a typical config repository once: 10 files, 200 commits each changing one.
func benchRepo(b *testing.B) *testRepo {
	b.Helper()
	files := map[string]string{}
	for i := range 10 {
		files[fmt.Sprintf("conf/file%d.yaml", i)] = fmt.Sprintf("# file %d\nkey: value\n", i)
	}
	files["homeserver.yaml"] = "server_name: example.com\n"
	r := newTestRepo(b, files)
	for i := 1; i < 200; i++ {
		name := fmt.Sprintf("conf/file%d.yaml", i%10)
		r.commit(map[string]string{name: fmt.Sprintf("# file %d\nkey: value\nrevision: %d\n", i%10, i)})
	}
	return r
}

// benchEnsure clones url into a fresh target per iteration.
func benchEnsure(b *testing.B, url string) {
	base := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		cfg := Config{URL: url, Target: filepath.Join(base, strconv.Itoa(i))}
		if _, err := Ensure(context.Background(), cfg, zap.NewNop()); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGitCLI runs `git clone` into a fresh directory per iteration, the old entrypoint's way.
func benchGitCLI(b *testing.B, url string) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("SKIPPED (needs git): run make test-deps")
	}
	base := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		cmd := exec.Command("git", "clone", "-q", url, filepath.Join(base, strconv.Itoa(i)))
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git clone: %v\n%s", err, out)
		}
	}
}

// benchHTTP serves a bare copy of the bench repository through git http-backend.
func benchHTTP(b *testing.B) string {
	r := benchRepo(b)
	root := b.TempDir()
	r.bareCopy(filepath.Join(root, "conf.git"))
	return newGitHTTPServer(b, root, "", "").url("conf.git")
}

func BenchmarkCloneLocal(b *testing.B)       { benchEnsure(b, benchRepo(b).dir) }
func BenchmarkGitCLICloneLocal(b *testing.B) { benchGitCLI(b, benchRepo(b).dir) }
func BenchmarkCloneHTTP(b *testing.B)        { benchEnsure(b, benchHTTP(b)) }
func BenchmarkGitCLICloneHTTP(b *testing.B)  { benchGitCLI(b, benchHTTP(b)) }
