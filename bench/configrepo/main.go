// Command configrepo benchmarks the entrypoint's clone and checkout of a typical config repository
// (10 files and homeserver.yaml, 200 commits) against the `git clone` CLI, each run as its own
// process so the kernel's accounting is the same for both: wall time from spawn to exit, CPU time
// and peak resident memory (ru_maxrss of the reaped child, which for git is its largest process:
// git, git-remote-https, index-pack...). Runs alternate tool order and transport, so machine noise
// hits both alike. Transports: a local path, and https through git http-backend behind a TLS
// server in this process (its own CA, given to git as GIT_SSL_CAINFO and to the entrypoint as
// CABundle; the server's work is not counted for either).
//
// It prints the markdown table rows (and, with -gotest, rows from `go test -bench Clone` output).
package main

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const httpBackend = "/usr/lib/git-core/git-http-backend"

// sample is one clone process's cost.
type sample struct {
	wall, cpu time.Duration
	maxrssKB  int64
}

func main() {
	cloneBin := flag.String("clone", "", "bench/configrepo/clone binary (the entrypoint's clone code)")
	runs := flag.Int("runs", 10, "clones per tool and transport")
	gotest := flag.String("gotest", "", "output of go test -bench Clone -benchmem, to add its figures")
	flag.Parse()
	if *cloneBin == "" {
		log.Fatal("configrepo bench: -clone is required")
	}
	if _, err := exec.LookPath("git"); err != nil {
		log.Fatal("configrepo bench: git not installed")
	}
	if _, err := os.Stat(httpBackend); err != nil {
		log.Fatalf("configrepo bench: %s missing", httpBackend)
	}
	dir, err := os.MkdirTemp("", "bench-configrepo-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	gitEnv := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "HOME="+dir)

	src, loose := filepath.Join(dir, "src"), filepath.Join(dir, "loose")
	if err := makeRepo(src, gitEnv, false); err != nil {
		log.Fatalf("configrepo bench: make repo: %v", err)
	}
	if err := makeRepo(loose, gitEnv, true); err != nil {
		log.Fatalf("configrepo bench: make repo: %v", err)
	}
	srvRoot := filepath.Join(dir, "srv")
	if err := run(gitEnv, "git", "clone", "-q", "--bare", src, filepath.Join(srvRoot, "conf.git")); err != nil {
		log.Fatalf("configrepo bench: bare copy: %v", err)
	}
	srv := httptest.NewUnstartedServer(&cgi.Handler{
		Path:   httpBackend,
		Env:    []string{"GIT_PROJECT_ROOT=" + srvRoot, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
		Stderr: io.Discard,
	})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		log.Fatal(err)
	}
	httpsURL := srv.URL + "/conf.git"

	type tool struct {
		name string
		argv func(url, target string) []string
		env  []string
	}
	tools := []tool{
		{"entrypoint", func(url, target string) []string { return []string{*cloneBin, "-ca", caFile, url, target} }, []string{"PATH=/usr/bin:/bin"}},
		{"git", func(url, target string) []string { return []string{"git", "clone", "-q", url, target} }, append(gitEnv, "GIT_SSL_CAINFO="+caFile)},
	}
	transports := []struct{ name, url string }{{"local, packed", src}, {"local, loose objects", loose}, {"https", httpsURL}}
	res := map[string][]sample{} // key tool/transport
	n := 0
	for i := -1; i < *runs; i++ { // i == -1: warm-up, not recorded
		for _, tr := range transports {
			order := tools
			if i%2 != 0 {
				order = []tool{tools[1], tools[0]}
			}
			for _, t := range order {
				n++
				target := filepath.Join(dir, "t", strconv.Itoa(n))
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					log.Fatal(err)
				}
				s, err := measure(t.argv(tr.url, target), t.env)
				if err != nil {
					log.Fatalf("configrepo bench: %s clone %s: %v", t.name, tr.name, err)
				}
				if _, err := os.Stat(filepath.Join(target, "homeserver.yaml")); err != nil {
					log.Fatalf("configrepo bench: %s clone %s: no homeserver.yaml in the checkout: %v", t.name, tr.name, err)
				}
				os.RemoveAll(target)
				if i >= 0 {
					res[t.name+"/"+tr.name] = append(res[t.name+"/"+tr.name], s)
				}
			}
		}
	}

	fmt.Println("| metric | entrypoint (go-git) | git CLI | entrypoint ÷ git | target |")
	fmt.Println("|---|---|---|---|---|")
	for _, tr := range transports {
		e, g := res["entrypoint/"+tr.name], res["git/"+tr.name]
		wall := func(s sample) float64 { return float64(s.wall) }
		cpu := func(s sample) float64 { return float64(s.cpu) }
		rss := func(s sample) float64 { return float64(s.maxrssKB) }
		row(fmt.Sprintf("clone + checkout, %s, wall time (median of %d processes)", tr.name, *runs), med(e, wall), med(g, wall), msf, "")
		row(fmt.Sprintf("clone + checkout, %s, CPU time user+sys (median)", tr.name), med(e, cpu), med(g, cpu), msf, "")
		row(fmt.Sprintf("clone + checkout, %s, peak RSS (median of maxrss)", tr.name), med(e, rss), med(g, rss), mibf, "")
	}
	if *gotest != "" {
		if err := goTestRows(*gotest); err != nil {
			log.Fatalf("configrepo bench: %v", err)
		}
	}
}

// makeRepo writes the repository with one git fast-import: the first commit adds conf/file0..9.yaml
// and homeserver.yaml, the 199 others each change one file (as internal/configrepo's benchRepo).
// The objects are in one pack (as in a repository that was cloned or pushed to), or loose (as
// after 200 `git commit`s, or go-git's commits in internal/configrepo's benchmark).
func makeRepo(dir string, env []string, loose bool) error {
	if err := run(env, "git", "init", "-q", "-b", "main", dir); err != nil {
		return err
	}
	var b bytes.Buffer
	file := func(name, content string) {
		fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", name, len(content), content)
	}
	for c := 0; c < 200; c++ {
		msg := fmt.Sprintf("commit %d", c)
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n", c+1, 1700000000+c, len(msg), msg)
		if c == 0 {
			for i := range 10 {
				file(fmt.Sprintf("conf/file%d.yaml", i), fmt.Sprintf("# file %d\nkey: value\n", i))
			}
			file("homeserver.yaml", "server_name: example.com\n")
		} else {
			fmt.Fprintf(&b, "from :%d\n", c)
			file(fmt.Sprintf("conf/file%d.yaml", c%10), fmt.Sprintf("# file %d\nkey: value\nrevision: %d\n", c%10, c))
		}
		b.WriteString("\n")
	}
	unpack := "0"
	if loose {
		unpack = "1000000"
	}
	imp := exec.Command("git", "-c", "fastimport.unpackLimit="+unpack, "fast-import", "--quiet")
	imp.Dir, imp.Env, imp.Stdin = dir, env, &b
	if out, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("fast-import: %v: %s", err, out)
	}
	cmd := exec.Command("git", "checkout", "-q", "-f", "main")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("checkout: %v: %s", err, out)
	}
	return nil
}

func run(env []string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %v: %s", argv, err, out)
	}
	return nil
}

// measure runs argv to completion: its wall time, the CPU time and peak RSS the kernel accounted
// to it and the descendants it waited for.
func measure(argv, env []string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu, maxrssKB: ru.Maxrss}, nil
}

func med(s []sample, f func(sample) float64) float64 {
	v := make([]float64, len(s))
	for i := range s {
		v[i] = f(s[i])
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func msf(ns float64) string  { return fmt.Sprintf("%.1f ms", ns/1e6) }
func mibf(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }

func row(metric string, e, g float64, format func(float64) string, target string) {
	fmt.Printf("| %s | %s | %s | %.2f× | %s |\n", metric, format(e), format(g), e/g, target)
}

// goTestRows adds the in-process benchmark's medians: the entrypoint's Ensure in the test binary
// against exec of `git clone` from it (plain http there, as internal/configrepo's bench serves it).
func goTestRows(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ns, bop := map[string][]float64{}, map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 4 || !strings.HasPrefix(fl[0], "Benchmark") {
			continue
		}
		name, _, _ := strings.Cut(fl[0], "-")
		for i := 2; i+1 < len(fl); i++ {
			v, err := strconv.ParseFloat(fl[i], 64)
			if err != nil {
				continue
			}
			switch fl[i+1] {
			case "ns/op":
				ns[name] = append(ns[name], v)
			case "B/op":
				bop[name] = append(bop[name], v)
			}
		}
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	for _, p := range []struct{ label, ours, git string }{
		{"local", "BenchmarkCloneLocal", "BenchmarkGitCLICloneLocal"},
		{"http", "BenchmarkCloneHTTP", "BenchmarkGitCLICloneHTTP"},
	} {
		e, g := median(ns[p.ours]), median(ns[p.git])
		if e == 0 || g == 0 {
			return fmt.Errorf("go test output %s lacks %s or %s", path, p.ours, p.git)
		}
		row(fmt.Sprintf("go test %s vs %s, time/op (median of %d)", strings.TrimPrefix(p.ours, "Benchmark"), strings.TrimPrefix(p.git, "Benchmark"), len(ns[p.ours])), e, g, msf, "")
	}
	for _, p := range []struct{ label, ours string }{{"local, its in-process server included", "BenchmarkCloneLocal"}, {"http", "BenchmarkCloneHTTP"}} {
		fmt.Printf("| go test %s: Go heap allocated per clone (%s) | %.1f MiB | (not Go) |  |  |\n",
			strings.TrimPrefix(p.ours, "Benchmark"), p.label, median(bop[p.ours])/(1<<20))
	}
	return nil
}
