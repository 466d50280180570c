package status

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestReadyzJSON(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(clock.Now, nil)
	h := tr.Handler()
	tr.SetRestarting(clock.Now().Add(12*time.Second), "exited with 1")
	since := clock.Now()
	clock.Advance(2 * time.Second)

	for _, tc := range []struct {
		name   string
		target string
		header http.Header
	}{
		{"verbose", "/readyz?verbose", nil},
		{"verbose=1", "/readyz?verbose=1", nil},
		{"accept", "/readyz", http.Header{"Accept": {"application/json"}}},
		{"accept list", "/readyz", http.Header{"Accept": {"text/html, application/json;q=0.9"}}},
	} {
		code, body, hdr := get(t, h, http.MethodGet, tc.target, tc.header)
		if code != 503 {
			t.Errorf("%s: HTTP %d, want 503", tc.name, code)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v: %s", tc.name, err, body)
		}
		want := map[string]any{
			"phase":      "restarting",
			"ready":      false,
			"reason":     "Synapse restarting in 10s: exited with 1",
			"since":      since.Format(time.RFC3339Nano),
			"restart_at": since.Add(12 * time.Second).Format(time.RFC3339Nano),
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %#v, want %#v (body %s)", tc.name, k, got[k], v, body)
			}
		}
	}

	tr.SetConfigInvalid("/data/homeserver.yaml:1:1: bad", 2)
	_, body, _ := get(t, h, http.MethodGet, "/readyz?verbose", nil)
	if !strings.Contains(body, `"errors":2`) || !strings.Contains(body, `"phase":"config-invalid"`) {
		t.Errorf("config-invalid JSON: %s", body)
	}

	tr.Set(PhaseReady, "")
	code, body, _ := get(t, h, http.MethodGet, "/readyz?verbose", nil)
	var got readyJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !got.Ready || got.Phase != PhaseReady || got.Reason != "ready" || got.RestartAt != "" {
		t.Errorf("ready JSON: %d %s", code, body)
	}
}

func TestRoutingAndMethods(t *testing.T) {
	tr := NewTracker(newFakeClock().Now, nil)
	h := tr.Handler()
	for _, tc := range []struct {
		method, target string
		code           int
	}{
		{http.MethodGet, "/healthz", 200},
		{http.MethodHead, "/healthz", 200},
		{http.MethodHead, "/readyz", 503},
		{http.MethodHead, "/metrics", 200},
		{http.MethodGet, "/metrics", 200},
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/healthz/", 404},
		{http.MethodGet, "/readyz/extra", 404},
		{http.MethodGet, "/debug/pprof/", 404},
		{http.MethodPost, "/nope", 404},
		{http.MethodPost, "/healthz", 405},
		{http.MethodPut, "/readyz", 405},
		{http.MethodDelete, "/metrics", 405},
		{http.MethodOptions, "/readyz", 405},
	} {
		code, body, hdr := get(t, h, tc.method, tc.target, nil)
		if code != tc.code {
			t.Errorf("%s %s: HTTP %d, want %d (%q)", tc.method, tc.target, code, tc.code, body)
		}
		if code == 405 && hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.target, hdr.Get("Allow"))
		}
	}
	tr.Set(PhaseReady, "")
	if code, _, _ := get(t, h, http.MethodHead, "/readyz", nil); code != 200 {
		t.Errorf("HEAD /readyz when ready: %d", code)
	}
}
