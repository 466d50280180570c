// Command synapse benchmarks the entrypoint against the real Synapse runtime. Every process under
// test is PID 1 of a new PID namespace chrooted into a fresh overlay of the runtime tree (with
// /proc), as in the image; a second, read-only lower layer adds the binaries under test, sh and
// git (the host's, for the tutorial's shell sequence; the tree has neither) and a config repository
// at /repo made with `entrypoint init --server-name localhost` and committed with git.
//
//   - startup: spawn → Synapse's exec, with SYNAPSE_COMMAND pointing at stamp (writes the wall
//     clock as it starts) instead of Synapse; the entrypoint with CONFIG_REPO=/repo against the
//     tutorial's `git clone $CONFIG_REPO /data && exec python3 -m synapse.app.homeserver ...`
//     (exec'ing stamp), interleaved, median;
//   - readiness: the real Synapse behind notifytap, which timestamps READY=1 as it arrives from
//     Synapse and relays it to the entrypoint's NOTIFY_SOCKET; /readyz and Synapse's own /health
//     polled every millisecond; the supervisor's "synapse ready" log line for reference;
//   - memory: VmRSS of the entrypoint (init + supervisor) and of Synapse once ready and idle, in a
//     start without notifytap and with the defaults.
//
// It prints markdown table rows. Needs root.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bench holds what the runs share, and the cleanups still owed if the run is interrupted.
type bench struct {
	tree, work, prep string
	mu               sync.Mutex
	cleanups         map[int]func()
	next             int
}

func main() {
	tree := flag.String("tree", "", "Synapse runtime tree (scripts/synapse-runtime.sh)")
	work := flag.String("work", "", "scratch directory (overlays are mounted below it)")
	entrypoint := flag.String("entrypoint", "bin/entrypoint", "entrypoint binary (static)")
	stamp := flag.String("stamp", "", "bench/synapse/stamp binary (static)")
	tap := flag.String("notifytap", "", "bench/synapse/notifytap binary (static)")
	runs := flag.Int("runs", 10, "startup runs per sequence")
	starts := flag.Int("starts", 3, "real Synapse starts for READY=1 → /readyz")
	idle := flag.Duration("idle", 5*time.Second, "idle time after READY before reading memory")
	flag.Parse()
	if os.Geteuid() != 0 {
		log.Fatal("synapse bench: needs root (overlay, chroot, PID namespaces)")
	}
	if *tree == "" || *work == "" || *stamp == "" || *tap == "" {
		log.Fatal("synapse bench: -tree, -work, -stamp and -notifytap are required")
	}
	b := &bench{tree: *tree, work: *work, cleanups: map[int]func(){}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		b.cleanupAll()
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
	code := 0
	if err := b.run(*entrypoint, *stamp, *tap, *runs, *starts, *idle); err != nil {
		log.Printf("synapse bench: %v", err)
		code = 1
	}
	b.cleanupAll()
	os.Exit(code)
}

func (b *bench) defer_(f func()) (done func()) {
	b.mu.Lock()
	id := b.next
	b.next++
	b.cleanups[id] = f
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		g, ok := b.cleanups[id]
		delete(b.cleanups, id)
		b.mu.Unlock()
		if ok {
			g()
		}
	}
}

func (b *bench) cleanupAll() {
	b.mu.Lock()
	ids := make([]int, 0, len(b.cleanups))
	for id := range b.cleanups {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	slices.Sort(ids)
	slices.Reverse(ids)
	for _, id := range ids {
		b.mu.Lock()
		f, ok := b.cleanups[id]
		delete(b.cleanups, id)
		b.mu.Unlock()
		if ok {
			f()
		}
	}
}

func (b *bench) run(entrypoint, stamp, tap string, runs, starts int, idle time.Duration) error {
	if err := b.makePrep(entrypoint, stamp, tap); err != nil {
		return fmt.Errorf("prepare the extra layer: %w", err)
	}

	// --- startup: spawn → Synapse's exec.
	seqs := []struct {
		name string
		argv []string
		env  func() []string
	}{
		{"entrypoint", []string{"/usr/local/bin/entrypoint"}, func() []string {
			return []string{"SYNAPSE_DATA_DIR=/data", "STATUS_ADDR=127.0.0.1:" + strconv.Itoa(freePort()),
				"SYNAPSE_RESTART=never", "CONFIG_REPO=/repo", "SYNAPSE_COMMAND=/usr/local/bin/stamp", "LOG_FORMAT=json"}
		}},
		{"shell", []string{"/usr/bin/sh", "-c", `git clone "$CONFIG_REPO" /data && exec /usr/local/bin/stamp -c /data/homeserver.yaml`},
			func() []string { return []string{"CONFIG_REPO=/repo"} }},
	}
	startup := map[string][]time.Duration{}
	for i := -1; i < runs; i++ { // -1: warm-up (page cache), not recorded
		order := []int{0, 1}
		if i%2 != 0 {
			order = []int{1, 0}
		}
		for _, k := range order {
			s := seqs[k]
			d, err := b.startupRun(s.argv, s.env())
			if err != nil {
				return fmt.Errorf("startup %s: %w", s.name, err)
			}
			if i >= 0 {
				startup[s.name] = append(startup[s.name], d)
			}
		}
	}

	// --- readiness with the real Synapse behind notifytap.
	var toReadyz, toHealth, toLog, toReady []time.Duration
	for i := 0; i < starts; i++ {
		r, err := b.readinessRun()
		if err != nil {
			return fmt.Errorf("readiness run %d: %w", i+1, err)
		}
		toReadyz, toHealth, toLog, toReady = append(toReadyz, r.readyz), append(toHealth, r.health), append(toLog, r.logLine), append(toReady, r.ready)
	}

	// --- memory, with the defaults and no tap.
	ep, syn, err := b.memoryRun(idle)
	if err != nil {
		return fmt.Errorf("memory run: %w", err)
	}

	fmt.Println("| metric | entrypoint | peer | entrypoint ÷ peer | target |")
	fmt.Println("|---|---|---|---|---|")
	e, s := median(startup["entrypoint"]), median(startup["shell"])
	fmt.Printf("| spawn → Synapse exec, local config repo (median of %d); peer: the tutorial's `git clone && exec` in sh | %s | %s | %.2f× |  |\n",
		runs, ms(e), ms(s), float64(e)/float64(s))
	e, s = slices.Min(startup["entrypoint"]), slices.Min(startup["shell"])
	fmt.Printf("| same, fastest of %d | %s | %s | %.2f× |  |\n", runs, ms(e), ms(s), float64(e)/float64(s))
	fmt.Printf("| READY=1 (at the notify socket) → first 200 of a 1 ms poller (median of %d starts); entrypoint: /readyz, peer: Synapse's /health | %s | %s | %s |  |\n",
		starts, ms(median(toReadyz)), ms(median(toHealth)), ratio(median(toReadyz), median(toHealth)))
	fmt.Printf("| same, worst of %d starts | %s | %s | %s |  |\n", starts, ms(slices.Max(toReadyz)), ms(slices.Max(toHealth)), ratio(slices.Max(toReadyz), slices.Max(toHealth)))
	fmt.Printf("| READY=1 → the supervisor's \"synapse ready\" log line (median; ts is truncated to 1 ms, so it can read below 0) | %s |  |  |  |\n", ms(median(toLog)))
	fmt.Printf("| for scale: spawn → READY=1, Synapse's own start with a fresh sqlite database (median) | %s |  |  |  |\n", fmt.Sprintf("%.2f s", median(toReady).Seconds()))
	fmt.Printf("| resident memory (VmRSS) once ready, idle %s: entrypoint (init + supervisor) vs Synapse (python3) | %s | %s | %.2f× |  |\n",
		idle, mib(ep.rss), mib(syn.rss), float64(ep.rss)/float64(syn.rss))
	fmt.Printf("| proportional set size (Pss: shared pages counted once over the processes sharing them) | %s | %s | %.2f× |  |\n",
		mib(ep.pss), mib(syn.pss), float64(ep.pss)/float64(syn.pss))
	fmt.Printf("| of which anonymous (RssAnon: heap, stacks; the rest is file pages, e.g. the executable's text) | %s | %s | %.2f× |  |\n",
		mib(ep.anon), mib(syn.anon), float64(ep.anon)/float64(syn.anon))
	return nil
}

// makePrep builds the extra lower layer: the binaries, sh, git and the config repository.
func (b *bench) makePrep(entrypoint, stamp, tap string) error {
	b.prep = filepath.Join(b.work, "prep")
	bins := map[string]string{
		"usr/local/bin/entrypoint": entrypoint,
		"usr/local/bin/stamp":      stamp,
		"usr/local/bin/notifytap":  tap,
	}
	for name, hostName := range map[string]string{"usr/bin/sh": "sh", "usr/bin/git": "git"} {
		p, err := exec.LookPath(hostName)
		if err != nil {
			return err
		}
		if p, err = filepath.EvalSymlinks(p); err != nil {
			return err
		}
		bins[name] = p
	}
	for dst, src := range bins {
		if err := copyFile(src, filepath.Join(b.prep, dst), 0o755); err != nil {
			return err
		}
	}
	links := map[string]string{
		"usr/bin/git-upload-pack":          "git",
		"usr/lib/git-core/git":             "../../bin/git",
		"usr/lib/git-core/git-upload-pack": "../../bin/git",
	}
	for name, target := range links {
		p := filepath.Join(b.prep, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/usr/share/git-core/templates"); err == nil {
		os.MkdirAll(filepath.Join(b.prep, "usr/share/git-core"), 0o755)
		if out, err := exec.Command("cp", "-a", "/usr/share/git-core/templates", filepath.Join(b.prep, "usr/share/git-core/")).CombinedOutput(); err != nil {
			return fmt.Errorf("copy git templates: %v: %s", err, out)
		}
	}
	repo := filepath.Join(b.prep, "repo")
	gitEnv := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+b.work)
	for _, argv := range [][]string{
		{entrypoint, "init", "--server-name", "localhost", repo},
		{"git", "-C", repo, "init", "-q", "-b", "main"},
		{"git", "-C", repo, "add", "-A"},
		{"git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "config"},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = gitEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v: %s", argv, err, out)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// root is one fresh overlay (prep over the tree) with /proc mounted, and how to take it down.
type root struct {
	dir     string
	release func()
}

func (b *bench) newRoot() (*root, error) {
	base, err := os.MkdirTemp(b.work, "root-")
	if err != nil {
		return nil, err
	}
	upper, wk, dir := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")
	for _, d := range []string{upper, wk, dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	var mounted []string
	release := b.defer_(func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			syscall.Unmount(mounted[i], syscall.MNT_DETACH)
		}
		os.RemoveAll(base)
	})
	opts := "lowerdir=" + b.prep + ":" + b.tree + ",upperdir=" + upper + ",workdir=" + wk
	if err := syscall.Mount("overlay", dir, "overlay", 0, opts); err != nil {
		release()
		return nil, fmt.Errorf("mount overlay: %w", err)
	}
	mounted = append(mounted, dir)
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		release()
		return nil, err
	}
	if err := syscall.Mount("proc", proc, "proc", 0, ""); err != nil {
		release()
		return nil, fmt.Errorf("mount proc: %w", err)
	}
	mounted = append(mounted, proc)
	return &root{dir: dir, release: release}, nil
}

// pid1 is a process running as PID 1 of a new PID namespace chrooted into a root.
type pid1 struct {
	cmd  *exec.Cmd
	out  *os.File // stdout and stderr
	done chan struct{}
	err  error
}

func (b *bench) start(r *root, argv, env []string, started *time.Time) (*pid1, error) {
	out, err := os.Create(filepath.Join(filepath.Dir(r.dir), "output"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8"}, env...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: should this program die, the namespace dies with its PID 1.
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.dir, Cloneflags: syscall.CLONE_NEWPID, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	*started = time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &pid1{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// kill ends the whole namespace (SIGKILL to its PID 1) and waits for it.
func (p *pid1) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.out.Close()
}

func (p *pid1) output() string {
	b, _ := os.ReadFile(p.out.Name())
	return string(b)
}

// startupRun runs one start sequence to its end and returns spawn → stamp.
func (b *bench) startupRun(argv, env []string) (time.Duration, error) {
	r, err := b.newRoot()
	if err != nil {
		return 0, err
	}
	defer r.release()
	var t0 time.Time
	p, err := b.start(r, argv, env, &t0)
	if err != nil {
		return 0, err
	}
	defer p.kill()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("did not end within 60s; output:\n%s", p.output())
	}
	if p.err != nil {
		return 0, fmt.Errorf("%v; output:\n%s", p.err, p.output())
	}
	ns, err := readStamp(filepath.Join(r.dir, "tmp/exec-stamp"))
	if err != nil {
		return 0, fmt.Errorf("no exec stamp (%v); output:\n%s", err, p.output())
	}
	return time.Unix(0, ns).Sub(t0), nil
}

func readStamp(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// readiness is one real start, every time relative to the READY=1 notifytap saw.
type readiness struct {
	readyz, health, logLine time.Duration
	ready                   time.Duration // spawn → READY=1
}

// embeddedEnv runs the embedded default config for localhost on free ports.
func embeddedEnv(httpPort, statusPort int) []string {
	return []string{
		"SYNAPSE_SERVER_NAME=localhost", "SYNAPSE_HTTP_PORT=" + strconv.Itoa(httpPort),
		"STATUS_ADDR=127.0.0.1:" + strconv.Itoa(statusPort), "SYNAPSE_DATA_DIR=/data",
		"SYNAPSE_RESTART=never", "LOG_FORMAT=json",
	}
}

func (b *bench) readinessRun() (readiness, error) {
	r, err := b.newRoot()
	if err != nil {
		return readiness{}, err
	}
	defer r.release()
	httpPort, statusPort := freePort(), freePort()
	env := append(embeddedEnv(httpPort, statusPort),
		// Readiness must come from READY=1, not from an early /health probe of the supervisor.
		"SYNAPSE_PROBE_INTERVAL=1h",
		"SYNAPSE_COMMAND=/usr/local/bin/notifytap python3 -m synapse.app.homeserver")
	var t0 time.Time
	p, err := b.start(r, []string{"/usr/local/bin/entrypoint"}, env, &t0)
	if err != nil {
		return readiness{}, err
	}
	defer p.kill()
	var wg sync.WaitGroup
	var readyz, health time.Time
	var errz, errh error
	wg.Add(2)
	go func() {
		defer wg.Done()
		readyz, errz = pollOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", statusPort), p.done)
	}()
	go func() {
		defer wg.Done()
		health, errh = pollOK(fmt.Sprintf("http://127.0.0.1:%d/health", httpPort), p.done)
	}()
	wg.Wait()
	if errz != nil || errh != nil {
		return readiness{}, fmt.Errorf("readyz: %v, health: %v; output:\n%s", errz, errh, tail(p.output(), 40))
	}
	tapFile := filepath.Join(r.dir, "tmp/notifytap-ready")
	var ns int64
	if !poll(10*time.Second, func() bool { ns, err = readStamp(tapFile); return err == nil }) {
		return readiness{}, fmt.Errorf("notifytap recorded no READY=1: %v; output:\n%s", err, tail(p.output(), 40))
	}
	ready := time.Unix(0, ns)
	var logTS time.Time
	if !poll(5*time.Second, func() bool { logTS, err = readyLogLine(p.output()); return err == nil }) {
		return readiness{}, fmt.Errorf("%v; output:\n%s", err, tail(p.output(), 40))
	}
	return readiness{readyz: readyz.Sub(ready), health: health.Sub(ready), logLine: logTS.Sub(ready), ready: ready.Sub(t0)}, nil
}

// pollOK GETs url every millisecond until it answers 200 and returns when that answer arrived.
func pollOK(url string, done <-chan struct{}) (time.Time, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-done:
			return time.Time{}, fmt.Errorf("the entrypoint exited before %s answered 200", url)
		case <-tick.C:
		}
	}
	return time.Time{}, fmt.Errorf("%s not 200 within 3 minutes", url)
}

// readyLogLine finds the supervisor's JSON "synapse ready" line and returns its ts.
func readyLogLine(output string) (time.Time, error) {
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"synapse ready"`) {
			continue
		}
		var rec struct {
			TS     string `json:"ts"`
			Msg    string `json:"msg"`
			Signal string `json:"signal"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != "synapse ready" {
			continue
		}
		if !strings.Contains(rec.Signal, "READY=1") {
			return time.Time{}, fmt.Errorf("the supervisor saw readiness through %q, not READY=1", rec.Signal)
		}
		return time.Parse("2006-01-02T15:04:05.000Z0700", rec.TS)
	}
	return time.Time{}, fmt.Errorf("no \"synapse ready\" log line")
}

// memoryRun starts Synapse as the image does and reads VmRSS once it is ready and idle.
// memKB is the resident memory of a set of processes: all of it, and its anonymous part (heap,
// stacks; the rest is file pages such as the executable's own text).
type memKB struct{ rss, anon, pss int }

func (m *memKB) add(pid int) {
	m.rss += statusKB(pid, "VmRSS")
	m.anon += statusKB(pid, "RssAnon")
	m.pss += pssKB(pid)
}

// pssKB is the proportional set size: shared pages (the init and the supervisor map the same
// executable) divided among the processes sharing them, so a sum over processes counts them once.
func pssKB(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

func (b *bench) memoryRun(idle time.Duration) (entrypoint, synapse memKB, err error) {
	r, err := b.newRoot()
	if err != nil {
		return entrypoint, synapse, err
	}
	defer r.release()
	statusPort := freePort()
	var t0 time.Time
	p, err := b.start(r, []string{"/usr/local/bin/entrypoint"}, embeddedEnv(freePort(), statusPort), &t0)
	if err != nil {
		return entrypoint, synapse, err
	}
	defer p.kill()
	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", statusPort)
	if !poll(3*time.Minute, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		return entrypoint, synapse, fmt.Errorf("/readyz not 200; output:\n%s", tail(p.output(), 40))
	}
	client.CloseIdleConnections()
	time.Sleep(idle) // idle, as an operator would see it later: the runtimes settle
	// The init's one child is the supervisor (re-executed through /proc/self/exe, so its comm
	// is not "entrypoint"); Synapse is the python3 below it.
	init := p.cmd.Process.Pid
	sup := children(init)
	if len(sup) != 1 || strings.HasPrefix(comm(sup[0]), "python") {
		return entrypoint, synapse, fmt.Errorf("expected the init to have one child, the supervisor; found %v", sup)
	}
	entrypoint.add(init)
	entrypoint.add(sup[0])
	nSyn := 0
	for _, pid := range descendants(sup[0]) {
		if strings.HasPrefix(comm(pid), "python3") {
			synapse.add(pid)
			nSyn++
		}
	}
	if nSyn != 1 {
		return entrypoint, synapse, fmt.Errorf("expected one python3 process below the supervisor, found %d", nSyn)
	}
	return entrypoint, synapse, nil
}

// children lists pid's children over all its threads.
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(append(out, c), descendants(c)...)
	}
	return out
}

func comm(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

// statusKB reads a kB field of /proc/PID/status (VmRSS, RssAnon...).
func statusKB(pid int, field string) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("synapse bench: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// poll checks cond every 10 ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// ratio is a÷b, or nothing when either is not positive (a 200 before READY=1 has no ratio).
func ratio(a, b time.Duration) string {
	if a <= 0 || b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.3f×", float64(a)/float64(b))
}

func mib(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
