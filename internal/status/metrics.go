package status

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// RestartReason is why the supervisor restarted Synapse: the label of
// entrypoint_synapse_restarts_total. Only the constants below are used, so the label set stays
// bounded.
type RestartReason string

// Restart reasons.
const (
	RestartCrash  RestartReason = "crash"  // Synapse exited on its own
	RestartProbe  RestartReason = "probe"  // /health stopped answering
	RestartConfig RestartReason = "config" // a new configuration was applied
	RestartManual RestartReason = "manual" // an operator asked for it
)

// SyncFailure is the kind of a failed configuration sync: the label of
// entrypoint_config_sync_failures_total.
type SyncFailure string

// Sync failure kinds.
const (
	SyncFetch   SyncFailure = "fetch"   // the repository could not be fetched
	SyncInvalid SyncFailure = "invalid" // it was fetched but did not validate
)

// Metrics are the entrypoint's Prometheus metrics on a private registry. The global default
// registry is never touched (see docs/CONVENTIONS.md: no global state), so two Metrics in one
// process, as in tests, do not collide. All methods are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	restarts      *prometheus.CounterVec
	ready         prometheus.Gauge
	commitInfo    *prometheus.GaugeVec
	syncFailures  *prometheus.CounterVec
	configApplied prometheus.Counter
	probeDuration *prometheus.HistogramVec
	phase         *prometheus.GaugeVec

	// mu makes replacing the commit series and switching the phase gauges atomic, so a scrape
	// never sees two commits or two phases at 1 because of concurrent callers.
	mu     sync.Mutex
	commit string
}

// NewMetrics builds the metrics on a fresh registry that also carries the Go runtime and process
// collectors. Every label value of the bounded labels is pre-created at zero, so dashboards and
// rate() see the series before the first event instead of a gap.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrypoint_synapse_restarts_total",
			Help: "Synapse restarts by the entrypoint, by reason (crash, probe, config, manual).",
		}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "entrypoint_synapse_ready",
			Help: "1 when Synapse is up and answering its health check, else 0.",
		}),
		commitInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "entrypoint_config_commit_info",
			Help: "Always 1; the commit label is the config repository commit currently live.",
		}, []string{"commit"}),
		syncFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrypoint_config_sync_failures_total",
			Help: "Failed config repository syncs, by kind (fetch, invalid).",
		}, []string{"kind"}),
		configApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entrypoint_config_applied_total",
			Help: "Configuration changes applied to Synapse.",
		}),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "entrypoint_probe_duration_seconds",
			Help:    "Latency of the Synapse /health probe, by result (ok, fail).",
			Buckets: prometheus.DefBuckets,
		}, []string{"result"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "entrypoint_phase",
			Help: "1 for the entrypoint's current phase, 0 for the others.",
		}, []string{"phase"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.restarts, m.ready, m.commitInfo, m.syncFailures, m.configApplied, m.probeDuration, m.phase,
	)
	for _, r := range []RestartReason{RestartCrash, RestartProbe, RestartConfig, RestartManual} {
		m.restarts.WithLabelValues(string(r))
	}
	for _, k := range []SyncFailure{SyncFetch, SyncInvalid} {
		m.syncFailures.WithLabelValues(string(k))
	}
	for _, res := range []string{"ok", "fail"} {
		m.probeDuration.WithLabelValues(res)
	}
	for _, p := range Phases() {
		m.phase.WithLabelValues(string(p))
	}
	return m
}

// Registry returns the private registry, for serving it or adding collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// IncRestart counts one Synapse restart for reason (use the Restart* constants).
func (m *Metrics) IncRestart(reason RestartReason) {
	m.restarts.WithLabelValues(string(reason)).Inc()
}

// SetReady sets entrypoint_synapse_ready. A Tracker does this on every phase change; call it
// directly only when not using a Tracker.
func (m *Metrics) SetReady(ready bool) {
	if ready {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
}

// SetConfigCommit publishes the live config commit. The previous commit's series is deleted, not
// zeroed, so the info metric has exactly one series and joins on it stay one-to-one. An empty
// commit removes the series (nothing is live). The commit is shown verbatim: pass a hash, never a
// URL with credentials.
func (m *Metrics) SetConfigCommit(commit string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if commit == m.commit {
		return
	}
	if m.commit != "" {
		m.commitInfo.DeleteLabelValues(m.commit)
	}
	m.commit = commit
	if commit != "" {
		m.commitInfo.WithLabelValues(commit).Set(1)
	}
}

// IncSyncFailure counts one failed config sync of kind (SyncFetch or SyncInvalid).
func (m *Metrics) IncSyncFailure(kind SyncFailure) {
	m.syncFailures.WithLabelValues(string(kind)).Inc()
}

// IncConfigApplied counts one configuration change that reached Synapse.
func (m *Metrics) IncConfigApplied() { m.configApplied.Inc() }

// ObserveProbe records the latency of one Synapse /health probe and whether it succeeded.
func (m *Metrics) ObserveProbe(d time.Duration, ok bool) {
	result := "fail"
	if ok {
		result = "ok"
	}
	m.probeDuration.WithLabelValues(result).Observe(d.Seconds())
}

// SetPhase sets entrypoint_phase to 1 for p and 0 for every other known phase. An unknown phase
// sets all of them to 0 rather than inventing a label value. A Tracker does this on every change.
func (m *Metrics) SetPhase(p Phase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range Phases() {
		v := 0.0
		if q == p {
			v = 1
		}
		m.phase.WithLabelValues(string(q)).Set(v)
	}
}
