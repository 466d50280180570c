package status

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxReasonBytes caps a caller's reason so /readyz stays one short line even when a caller hands
// over a whole error chain; a Docker HEALTHCHECK log keeps only a few kilobytes per probe.
const maxReasonBytes = 512

// Tracker holds the supervisor's current phase and why it is there. It is safe for concurrent use:
// the supervisor writes, the HTTP handler reads. Every change is mirrored into its Metrics under
// the same lock, so the entrypoint_phase and entrypoint_synapse_ready gauges never disagree with
// /readyz.
type Tracker struct {
	now     func() time.Time
	metrics *Metrics

	mu        sync.Mutex
	phase     Phase
	reason    string
	errors    int
	since     time.Time
	restartAt time.Time
}

// Snapshot is a consistent copy of a Tracker's state at one instant, rendered for humans.
type Snapshot struct {
	Phase Phase
	// Ready is true only in PhaseReady.
	Ready bool
	// Reason is the caller's (redacted) detail, as passed to Set.
	Reason string
	// Message is the one-line explanation /readyz shows after "not ready: " (or "ready").
	Message string
	// Since is when the tracker entered Phase.
	Since time.Time
	// RestartAt is the next restart attempt; zero unless Phase is PhaseRestarting.
	RestartAt time.Time
	// Errors is how many configuration errors were found; non-zero only in PhaseConfigInvalid.
	Errors int
}

// NewTracker returns a Tracker in PhaseStarting. now is the clock (tests pass a fixed one; nil
// means time.Now). metrics receives every phase change; nil creates a fresh private Metrics, so a
// Tracker always has a /metrics to serve.
func NewTracker(now func() time.Time, metrics *Metrics) *Tracker {
	if now == nil {
		now = time.Now
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	t := &Tracker{now: now, metrics: metrics, phase: PhaseStarting, since: now()}
	t.metrics.SetPhase(PhaseStarting)
	t.metrics.SetReady(false)
	return t
}

// Metrics returns the metrics this tracker updates, so callers can count restarts, probes and
// config syncs on the same registry /metrics serves.
func (t *Tracker) Metrics() *Metrics { return t.metrics }

// Set moves the tracker to phase with a caller-supplied reason. The reason MUST be redacted: it is
// shown verbatim (after folding control characters into spaces) to anyone who can reach /readyz.
// For PhaseCloning pass the redacted repository URL, for PhaseConfigInvalid "file:line: message"
// (or use SetConfigInvalid). Staying in the same phase keeps its start time, so "started 42s ago"
// measures the phase, not the last update.
func (t *Tracker) Set(phase Phase, reason string) {
	t.set(phase, reason, time.Time{}, 0)
}

// SetRestarting moves the tracker to PhaseRestarting with the time of the next attempt, so
// /readyz can count down ("Synapse restarting in 12s"). The reason MUST be redacted.
func (t *Tracker) SetRestarting(at time.Time, reason string) {
	t.set(PhaseRestarting, reason, at, 0)
}

// SetConfigInvalid moves the tracker to PhaseConfigInvalid. first is the first error as
// "file:line[:col]: message" and count how many errors validation found in total; both MUST be
// free of secrets (quote the key that is wrong, not its value).
func (t *Tracker) SetConfigInvalid(first string, count int) {
	if count < 1 {
		count = 1
	}
	t.set(PhaseConfigInvalid, first, time.Time{}, count)
}

func (t *Tracker) set(phase Phase, reason string, restartAt time.Time, errors int) {
	reason = sanitizeReason(reason)
	t.mu.Lock()
	defer t.mu.Unlock()
	if phase != t.phase {
		t.since = t.now()
	}
	t.phase, t.reason, t.restartAt, t.errors = phase, reason, restartAt, errors
	t.metrics.SetPhase(phase)
	t.metrics.SetReady(phase == PhaseReady)
}

// Ready reports whether Synapse is up and serving; only then does /readyz answer 200.
func (t *Tracker) Ready() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase == PhaseReady
}

// Phase returns the current phase.
func (t *Tracker) Phase() Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase
}

// Snapshot returns the current state with Message rendered against the tracker's clock, so a
// countdown or an elapsed time is computed at the moment of the request.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	s := Snapshot{
		Phase: t.phase, Ready: t.phase == PhaseReady, Reason: t.reason, Since: t.since,
		RestartAt: t.restartAt, Errors: t.errors,
	}
	t.mu.Unlock()
	s.Message = describe(s, t.now())
	return s
}

// describe renders the one-line explanation of s at now. It names the thing being waited for in
// the operator's terms, because "not ready" alone sends people to the logs.
func describe(s Snapshot, now time.Time) string {
	withReason := func(msg string) string {
		if s.Reason == "" {
			return msg
		}
		return msg + ": " + s.Reason
	}
	orDefault := func(prefix, def string) string {
		if s.Reason == "" {
			return def
		}
		return prefix + s.Reason
	}
	switch s.Phase {
	case PhaseStarting:
		return withReason("entrypoint starting")
	case PhaseKeybase:
		return withReason("waiting for Keybase")
	case PhaseCloning:
		return orDefault("cloning ", "cloning the config repository")
	case PhaseValidating:
		return orDefault("validating ", "validating the configuration")
	case PhaseConfigInvalid:
		msg := orDefault("config invalid at ", "config invalid")
		if s.Errors > 1 {
			msg += fmt.Sprintf(" (and %d more errors)", s.Errors-1)
		}
		return msg
	case PhaseMigrating:
		return withReason(fmt.Sprintf("Synapse migrating the database (started %s ago)", roundSeconds(now.Sub(s.Since))))
	case PhaseReady:
		return "ready"
	case PhaseRestarting:
		if s.RestartAt.IsZero() {
			return withReason("Synapse restarting")
		}
		left := s.RestartAt.Sub(now)
		if left <= 0 {
			return withReason("Synapse restarting now")
		}
		// Round up so the countdown never shows "in 0s" while there is still time to wait.
		left = (left + time.Second - 1).Truncate(time.Second)
		return withReason(fmt.Sprintf("Synapse restarting in %s", left))
	case PhaseStopping:
		return withReason("entrypoint stopping")
	case PhaseStopped:
		return withReason("entrypoint stopped")
	default:
		return withReason(string(s.Phase))
	}
}

// roundSeconds renders an elapsed time to whole seconds ("42s", "3m12s"); sub-second precision is
// noise to an operator and makes the line change on every probe.
func roundSeconds(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

// sanitizeReason folds control characters (newlines above all) into spaces and caps the length, so
// a multi-line error from a caller cannot break the one-line /readyz contract or forge lines in a
// healthcheck log.
func sanitizeReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxReasonBytes {
		cut := maxReasonBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
