// Command pid1 benchmarks the entrypoint's init against tini and dumb-init, each as PID 1 of a
// new PID namespace, in the same run and interleaved so machine noise hits all alike:
//
//   - reaping: a child leaves 10,000 zombie orphans at once; the time from its exit until the
//     init has no orphan left;
//   - relay: SIGUSR1 sent to PID 1 until the child (sigrecorder) timestamps its receipt, p50/p99;
//   - memory: resident set of the init (plus the entrypoint's supervisor) while idle.
//
// It prints a markdown table. Needs root.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type initCmd struct {
	name string
	argv []string // the init and its arguments before the child's argv
}

func main() {
	entrypoint := flag.String("entrypoint", "bin/entrypoint", "entrypoint binary")
	orphaner := flag.String("orphaner", "", "orphaner binary")
	sigrec := flag.String("sigrecorder", "", "sigrecorder binary")
	orphans := flag.Int("orphans", 10000, "orphans per reaping round")
	rounds := flag.Int("rounds", 5, "reaping rounds per init")
	signals := flag.Int("signals", 2000, "signals per relay run")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "pid1 bench: needs root (PID namespaces)")
		os.Exit(2)
	}
	inits := []initCmd{{"entrypoint", []string{*entrypoint, "--"}}}
	for _, peer := range []string{"tini", "dumb-init"} {
		if p, err := exec.LookPath(peer); err == nil {
			inits = append(inits, initCmd{peer, []string{p, "--"}})
		} else {
			fmt.Fprintf(os.Stderr, "pid1 bench: %s not installed, skipped\n", peer)
		}
	}
	reap := map[string][]time.Duration{}
	cpu := map[string][]time.Duration{}
	left := map[string]int{}
	for r := 0; r < *rounds; r++ {
		for _, in := range inits {
			d, c, n, err := reapRound(in, *orphaner, *orphans)
			if err != nil {
				fmt.Fprintf(os.Stderr, "pid1 bench: reap %s: %v\n", in.name, err)
				os.Exit(1)
			}
			reap[in.name] = append(reap[in.name], d)
			cpu[in.name] = append(cpu[in.name], c)
			left[in.name] += n
		}
	}
	relay := map[string][]time.Duration{}
	rss := map[string]int{}
	for _, in := range inits {
		lat, kb, err := relayRun(in, *sigrec, *signals)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pid1 bench: relay %s: %v\n", in.name, err)
			os.Exit(1)
		}
		relay[in.name], rss[in.name] = lat, kb
	}
	report(inits, reap, cpu, left, relay, rss, *orphans, *rounds, *signals)
}

// start runs the init with the child argv as PID 1 of a new PID namespace.
func start(in initCmd, dir string, child ...string) (*exec.Cmd, error) {
	cmd := exec.Command(in.argv[0], append(append([]string{}, in.argv[1:]...), child...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "DIR=" + dir, "LOG_LEVEL=warn"}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	return cmd, cmd.Start()
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// reapRound measures one reaping round: the wall time from the orphaner's exit until no orphan
// is left, the CPU time the init spent meanwhile, and how many orphans were left unreaped.
func reapRound(in initCmd, orphaner string, n int) (wall, cpu time.Duration, left int, err error) {
	dir, err := os.MkdirTemp("", "reap-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	stamp, exited := filepath.Join(dir, "stamp"), filepath.Join(dir, "exited")
	cmd, err := start(in, dir, "sh", "-c", fmt.Sprintf("%s -n %d -stamp %s; : > %s; exec sleep 1000", orphaner, n, stamp, exited))
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop(cmd)
	if !poll(2*time.Minute, func() bool { _, err := os.Stat(stamp); return err == nil }) {
		return 0, 0, 0, fmt.Errorf("orphaner did not finish")
	}
	cpu0 := cpuTime(cmd.Process.Pid)
	if !poll(time.Minute, func() bool { _, err := os.Stat(exited); return err == nil }) {
		return 0, 0, 0, fmt.Errorf("orphaner did not exit")
	}
	// Children of the init other than its main child (or, for the entrypoint, the supervisor).
	if !poll(time.Minute, func() bool { return len(childrenOf(cmd.Process.Pid)) <= 1 }) {
		return 0, 0, len(childrenOf(cmd.Process.Pid)) - 1, nil
	}
	done := time.Now()
	cpu = cpuTime(cmd.Process.Pid) - cpu0
	b, err := os.ReadFile(stamp)
	if err != nil {
		return 0, 0, 0, err
	}
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return done.Sub(time.Unix(0, ns)), cpu, 0, nil
}

// cpuTime is the CPU time pid's threads have run, from schedstat (nanoseconds, not ticks).
func cpuTime(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var total int64
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}

// relayRun measures signal relay latency and, once the signals are done and the init idle, its
// resident memory.
func relayRun(in initCmd, sigrec string, n int) ([]time.Duration, int, error) {
	dir, err := os.MkdirTemp("", "relay-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, 0, err
	}
	cmd, err := start(in, dir, sigrec, "-out", fifo)
	if err != nil {
		return nil, 0, err
	}
	defer stop(cmd)
	f, err := os.Open(fifo) // blocks until the recorder opens its end
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	if !lines.Scan() || lines.Text() != "ready" {
		return nil, 0, fmt.Errorf("recorder not ready: %q", lines.Text())
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		sent := time.Now()
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGUSR1); err != nil {
			return nil, 0, err
		}
		if !lines.Scan() {
			return nil, 0, fmt.Errorf("recorder stopped after %d signals", i)
		}
		f := strings.Fields(lines.Text())
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		lat = append(lat, time.Unix(0, ns).Sub(sent))
	}
	// Idle: let the runtime settle before reading RSS, as an operator would see it later.
	time.Sleep(2 * time.Second)
	kb := rssKB(cmd.Process.Pid)
	if in.name == "entrypoint" {
		for _, c := range childrenOf(cmd.Process.Pid) {
			kb += rssKB(c)
		}
	}
	return lat, kb, nil
}

// childrenOf lists pid's children over all its threads.
func childrenOf(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb
		}
	}
	return 0
}

// poll checks cond every 100 µs until it holds or timeout passes: fine-grained, since it times
// the reaping itself.
func poll(timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return cond()
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func report(inits []initCmd, reap, cpu map[string][]time.Duration, left map[string]int, relay map[string][]time.Duration, rss map[string]int, orphans, rounds, signals int) {
	names := make([]string, len(inits))
	for i, in := range inits {
		names[i] = in.name
	}
	row := func(metric string, val func(string) string, ratio func(a, b string) string, target string) {
		fmt.Printf("| %s |", metric)
		for _, n := range names {
			fmt.Printf(" %s |", val(n))
		}
		if len(names) > 1 {
			fmt.Printf(" %s |", ratio("entrypoint", names[1]))
		}
		fmt.Printf(" %s |\n", target)
	}
	fmt.Printf("| metric |")
	for _, n := range names {
		fmt.Printf(" %s |", n)
	}
	if len(names) > 1 {
		fmt.Printf(" entrypoint ÷ %s |", names[1])
	}
	fmt.Println(" target |")
	fmt.Print("|---|")
	for range names {
		fmt.Print("---|")
	}
	if len(names) > 1 {
		fmt.Print("---|")
	}
	fmt.Println("---|")
	dratio := func(f func(string) time.Duration) func(a, b string) string {
		return func(a, b string) string { return fmt.Sprintf("%.2f×", float64(f(a))/float64(f(b))) }
	}
	med := func(n string) time.Duration { return pct(reap[n], 0.5) }
	p50 := func(n string) time.Duration { return pct(relay[n], 0.5) }
	p99 := func(n string) time.Duration { return pct(relay[n], 0.99) }
	row(fmt.Sprintf("reap %d orphans (median of %d)", orphans, rounds), func(n string) string { return ms(med(n)) }, dratio(med), "≤ 1.5× tini")
	cpuMed := func(n string) time.Duration { return pct(cpu[n], 0.5) }
	row("init CPU time while reaping them (median)", func(n string) string { return ms(cpuMed(n)) }, dratio(cpuMed), "")
	row("orphans left unreaped", func(n string) string { return strconv.Itoa(left[n]) }, func(a, b string) string { return "" }, "0")
	row(fmt.Sprintf("signal relay p50 (%d SIGUSR1)", signals), func(n string) string { return us(p50(n)) }, dratio(p50), "")
	row("signal relay p99", func(n string) string { return us(p99(n)) }, dratio(p99), "< 1 ms")
	row("resident memory, idle", func(n string) string { return fmt.Sprintf("%.1f MiB", float64(rss[n])/1024) },
		func(a, b string) string { return fmt.Sprintf("%.2f×", float64(rss[a])/float64(rss[b])) }, "≤ 12 MiB (init + supervisor)")
}
