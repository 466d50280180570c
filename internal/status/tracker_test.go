package status

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadyzReasons walks one tracker through a whole life, checking the line /readyz shows at
// each step. The steps share the tracker and clock on purpose: elapsed times and countdowns depend
// on what came before.
func TestReadyzReasons(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(clock.Now, nil)
	h := tr.Handler()
	restartAt := func(d time.Duration) time.Time { return clock.Now().Add(d) }

	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		code    int
		body    string
	}{
		{"initial", func() {}, 0, 503, "not ready: entrypoint starting"},
		{"keybase", func() { tr.Set(PhaseKeybase, "") }, 0, 503, "not ready: waiting for Keybase"},
		{"keybase detail", func() { tr.Set(PhaseKeybase, "service not running yet") }, 0, 503,
			"not ready: waiting for Keybase: service not running yet"},
		{"cloning", func() { tr.Set(PhaseCloning, "keybase://team/x/matrix") }, 0, 503,
			"not ready: cloning keybase://team/x/matrix"},
		{"cloning no url", func() { tr.Set(PhaseCloning, "") }, 0, 503, "not ready: cloning the config repository"},
		{"validating", func() { tr.Set(PhaseValidating, "") }, 0, 503, "not ready: validating the configuration"},
		{"config invalid, one error", func() {
			tr.SetConfigInvalid(`/data/homeserver.yaml:12:3: unknown key "listenres"`, 1)
		}, 0, 503, `not ready: config invalid at /data/homeserver.yaml:12:3: unknown key "listenres"`},
		{"config invalid, three errors", func() {
			tr.SetConfigInvalid(`/data/homeserver.yaml:12:3: unknown key "listenres"`, 3)
		}, 0, 503, `not ready: config invalid at /data/homeserver.yaml:12:3: unknown key "listenres" (and 2 more errors)`},
		{"migrating just started", func() { tr.Set(PhaseMigrating, "") }, 0, 503,
			"not ready: Synapse migrating the database (started 0s ago)"},
		{"migrating 42s", func() {}, 42 * time.Second, 503,
			"not ready: Synapse migrating the database (started 42s ago)"},
		{"migrating update keeps start", func() { tr.Set(PhaseMigrating, "") }, 150*time.Second + 400*time.Millisecond, 503,
			"not ready: Synapse migrating the database (started 3m12s ago)"},
		{"ready", func() { tr.Set(PhaseReady, "") }, 0, 200, "ready"},
		{"restarting", func() { tr.SetRestarting(restartAt(12*time.Second), "exited with 1") }, 0, 503,
			"not ready: Synapse restarting in 12s: exited with 1"},
		{"restarting counts down", func() {}, 5 * time.Second, 503, "not ready: Synapse restarting in 7s: exited with 1"},
		{"restarting rounds up", func() {}, 500 * time.Millisecond, 503, "not ready: Synapse restarting in 7s: exited with 1"},
		{"restarting last second", func() {}, 6 * time.Second, 503, "not ready: Synapse restarting in 1s: exited with 1"},
		{"restarting due", func() {}, 500 * time.Millisecond, 503, "not ready: Synapse restarting now: exited with 1"},
		{"restarting overdue", func() {}, time.Minute, 503, "not ready: Synapse restarting now: exited with 1"},
		{"restarting without time", func() { tr.SetRestarting(time.Time{}, "") }, 0, 503, "not ready: Synapse restarting"},
		{"ready again", func() { tr.Set(PhaseReady, "ignored detail") }, 0, 200, "ready"},
		{"stopping", func() { tr.Set(PhaseStopping, "SIGTERM") }, 0, 503, "not ready: entrypoint stopping: SIGTERM"},
		{"stopped", func() { tr.Set(PhaseStopped, "") }, 0, 503, "not ready: entrypoint stopped"},
		{"multi-line reason folded", func() { tr.Set(PhaseKeybase, "line one\nline two\r\n") }, 0, 503,
			"not ready: waiting for Keybase: line one line two"},
	}
	for _, st := range steps {
		st.do()
		clock.Advance(st.advance)
		code, body, hdr := get(t, h, http.MethodGet, "/readyz", nil)
		if code != st.code || body != st.body+"\n" {
			t.Errorf("%s: got %d %q, want %d %q", st.name, code, body, st.code, st.body+"\n")
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q", st.name, ct)
		}
		if got, want := tr.Ready(), st.code == 200; got != want {
			t.Errorf("%s: Ready() = %v, want %v", st.name, got, want)
		}
		// Liveness never depends on the phase.
		if code, body, _ := get(t, h, http.MethodGet, "/healthz", nil); code != 200 || body != "ok\n" {
			t.Errorf("%s: /healthz = %d %q, want 200 \"ok\\n\"", st.name, code, body)
		}
	}
}

func TestSnapshotSinceTracksPhaseChanges(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(clock.Now, nil)
	start := clock.Now()
	if s := tr.Snapshot(); s.Phase != PhaseStarting || !s.Since.Equal(start) || s.Ready {
		t.Fatalf("initial snapshot %+v", s)
	}
	clock.Advance(time.Second)
	tr.Set(PhaseCloning, "keybase://team/x/a")
	clock.Advance(time.Second)
	tr.Set(PhaseCloning, "keybase://team/x/b")
	s := tr.Snapshot()
	if !s.Since.Equal(start.Add(time.Second)) {
		t.Errorf("Since = %v, want the first entry into cloning %v", s.Since, start.Add(time.Second))
	}
	if s.Reason != "keybase://team/x/b" || s.Message != "cloning keybase://team/x/b" {
		t.Errorf("snapshot %+v", s)
	}
	tr.Set(PhaseReady, "")
	if s := tr.Snapshot(); !s.Ready || !s.Since.Equal(start.Add(2*time.Second)) || tr.Phase() != PhaseReady {
		t.Errorf("ready snapshot %+v", s)
	}
}

func TestLongReasonIsCapped(t *testing.T) {
	tr := NewTracker(newFakeClock().Now, nil)
	tr.Set(PhaseKeybase, strings.Repeat("é", 2*maxReasonBytes))
	r := tr.Snapshot().Reason
	if len(r) > maxReasonBytes+len("…") || !strings.HasSuffix(r, "…") {
		t.Fatalf("reason not capped: %d bytes", len(r))
	}
	if !strings.HasPrefix(r, "éé") || strings.ContainsRune(r, '\uFFFD') {
		t.Fatalf("reason cut inside a rune: %q", r[len(r)-8:])
	}
}

func TestPhasesKnown(t *testing.T) {
	for _, p := range Phases() {
		if !p.Known() {
			t.Errorf("%s not Known", p)
		}
	}
	if Phase("bogus").Known() {
		t.Error("bogus phase Known")
	}
	if len(Phases()) != 10 {
		t.Errorf("%d phases, want 10", len(Phases()))
	}
}

// TestConcurrentUse hammers a tracker from writers and HTTP readers; its point is the -race run.
func TestConcurrentUse(t *testing.T) {
	tr := NewTracker(nil, nil)
	h := tr.Handler()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j, p := range append(Phases(), Phases()...) {
				if j%3 == 0 {
					tr.SetRestarting(time.Now().Add(time.Second), "crash")
					tr.Metrics().IncRestart(RestartCrash)
				}
				tr.Set(p, "x")
				tr.Metrics().SetConfigCommit([]string{"a", "b", "c"}[j%3])
				tr.Metrics().ObserveProbe(time.Millisecond, j%2 == 0)
			}
		}()
		go func() {
			defer wg.Done()
			for _, path := range []string{"/readyz", "/readyz?verbose", "/metrics", "/healthz"} {
				if code, body, _ := get(t, h, http.MethodGet, path, nil); code != 200 && code != 503 {
					t.Errorf("%s: %d %s", path, code, body)
				}
			}
		}()
	}
	wg.Wait()
	tr.Set(PhaseReady, "")
	fams := scrape(t, h)
	ones := 0
	for _, p := range Phases() {
		if v, _ := metricValue(t, fams, "entrypoint_phase", map[string]string{"phase": string(p)}); v == 1 {
			ones++
		}
	}
	if ones != 1 {
		t.Errorf("%d phases at 1 after concurrent updates, want 1", ones)
	}
	if n := len(fams["entrypoint_config_commit_info"].GetMetric()); n != 1 {
		t.Errorf("%d commit series after concurrent updates, want 1", n)
	}
}
