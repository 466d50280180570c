package status

import (
	"fmt"
	"testing"
	"time"
)

func TestMetricsValues(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(clock.Now, nil)
	h := tr.Handler()
	m := tr.Metrics()

	// Before any event every bounded series exists at zero.
	fams := scrape(t, h)
	for _, name := range []string{
		"entrypoint_synapse_restarts_total", "entrypoint_synapse_ready", "entrypoint_config_sync_failures_total",
		"entrypoint_config_applied_total", "entrypoint_probe_duration_seconds", "entrypoint_phase",
		"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("metric %s missing before any update", name)
		}
	}
	expect := func(name string, labels map[string]string, want float64) {
		t.Helper()
		got, ok := metricValue(t, fams, name, labels)
		if !ok || got != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
		}
	}
	expect("entrypoint_synapse_restarts_total", map[string]string{"reason": "manual"}, 0)
	expect("entrypoint_config_sync_failures_total", map[string]string{"kind": "fetch"}, 0)
	expect("entrypoint_phase", map[string]string{"phase": "starting"}, 1)
	expect("entrypoint_phase", map[string]string{"phase": "ready"}, 0)
	expect("entrypoint_synapse_ready", nil, 0)
	if _, ok := fams["entrypoint_config_commit_info"]; ok {
		t.Error("commit info present before any commit is live")
	}

	m.IncRestart(RestartCrash)
	m.IncRestart(RestartCrash)
	m.IncRestart(RestartProbe)
	m.IncRestart(RestartConfig)
	m.IncSyncFailure(SyncFetch)
	m.IncSyncFailure(SyncFetch)
	m.IncSyncFailure(SyncFetch)
	m.IncSyncFailure(SyncInvalid)
	m.IncConfigApplied()
	m.IncConfigApplied()
	m.ObserveProbe(20*time.Millisecond, true)
	m.ObserveProbe(30*time.Millisecond, true)
	m.ObserveProbe(2*time.Second, false)
	m.SetConfigCommit("0123abcd")
	tr.Set(PhaseReady, "")

	fams = scrape(t, h)
	expect("entrypoint_synapse_restarts_total", map[string]string{"reason": "crash"}, 2)
	expect("entrypoint_synapse_restarts_total", map[string]string{"reason": "probe"}, 1)
	expect("entrypoint_synapse_restarts_total", map[string]string{"reason": "config"}, 1)
	expect("entrypoint_synapse_restarts_total", map[string]string{"reason": "manual"}, 0)
	expect("entrypoint_config_sync_failures_total", map[string]string{"kind": "fetch"}, 3)
	expect("entrypoint_config_sync_failures_total", map[string]string{"kind": "invalid"}, 1)
	expect("entrypoint_config_applied_total", nil, 2)
	expect("entrypoint_probe_duration_seconds", map[string]string{"result": "ok"}, 2)
	expect("entrypoint_probe_duration_seconds", map[string]string{"result": "fail"}, 1)
	expect("entrypoint_config_commit_info", map[string]string{"commit": "0123abcd"}, 1)
	expect("entrypoint_synapse_ready", nil, 1)
	for _, p := range Phases() {
		want := 0.0
		if p == PhaseReady {
			want = 1
		}
		expect("entrypoint_phase", map[string]string{"phase": string(p)}, want)
	}
	for _, m := range fams["entrypoint_probe_duration_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetValue() == "ok" {
				if sum := m.GetHistogram().GetSampleSum(); sum < 0.0499 || sum > 0.0501 {
					t.Errorf("probe ok sum = %v, want 0.05", sum)
				}
			}
		}
	}

	// Leaving ready drops the gauge.
	tr.SetRestarting(clock.Now().Add(time.Second), "crash")
	fams = scrape(t, h)
	expect("entrypoint_synapse_ready", nil, 0)
	expect("entrypoint_phase", map[string]string{"phase": "restarting"}, 1)
	expect("entrypoint_phase", map[string]string{"phase": "ready"}, 0)
}

func TestConfigCommitReplaced(t *testing.T) {
	tr := NewTracker(newFakeClock().Now, nil)
	h := tr.Handler()
	m := tr.Metrics()
	commits := func() []string {
		var out []string
		for _, s := range scrape(t, h)["entrypoint_config_commit_info"].GetMetric() {
			for _, lp := range s.GetLabel() {
				out = append(out, fmt.Sprintf("%s=%g", lp.GetValue(), s.GetGauge().GetValue()))
			}
		}
		return out
	}
	m.SetConfigCommit("aaaa")
	if got := commits(); len(got) != 1 || got[0] != "aaaa=1" {
		t.Fatalf("after first commit: %v", got)
	}
	m.SetConfigCommit("bbbb")
	if got := commits(); len(got) != 1 || got[0] != "bbbb=1" {
		t.Fatalf("after change: %v, want only bbbb=1", got)
	}
	m.SetConfigCommit("bbbb")
	if got := commits(); len(got) != 1 || got[0] != "bbbb=1" {
		t.Fatalf("after same commit: %v", got)
	}
	m.SetConfigCommit("")
	if _, ok := scrape(t, h)["entrypoint_config_commit_info"]; ok {
		t.Fatal("commit info still present after clearing")
	}
}

// TestMetricsArePrivate builds two sets side by side: with the global registry the second
// registration would panic, and their values would mix.
func TestMetricsArePrivate(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.IncConfigApplied()
	ha := NewTracker(nil, a).Handler()
	hb := NewTracker(nil, b).Handler()
	if v, _ := metricValue(t, scrape(t, ha), "entrypoint_config_applied_total", nil); v != 1 {
		t.Errorf("a applied = %v, want 1", v)
	}
	if v, _ := metricValue(t, scrape(t, hb), "entrypoint_config_applied_total", nil); v != 0 {
		t.Errorf("b applied = %v, want 0", v)
	}
}
