package status

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
	"go.uber.org/zap/zaptest"
)

func TestListenAndDialAddr(t *testing.T) {
	for _, tc := range []struct {
		in, listen, dial string
		bad              bool
	}{
		{"", DefaultAddr, DefaultAddr, false},
		{"127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1:8080", false},
		{":9000", ":9000", "127.0.0.1:9000", false},
		{"0.0.0.0:9000", "0.0.0.0:9000", "127.0.0.1:9000", false},
		{"[::]:9000", "[::]:9000", "[::1]:9000", false},
		{"[::1]:9000", "[::1]:9000", "[::1]:9000", false},
		{"localhost:9000", "localhost:9000", "localhost:9000", false},
		{"9000", "", "", true},
		{"host:", "", "", true},
		{":http", "", "", true},
		{":70000", "", "", true},
		{"a:b:c", "", "", true},
	} {
		l, lerr := ListenAddr(tc.in)
		d, derr := DialAddr(tc.in)
		if tc.bad {
			if lerr == nil || derr == nil {
				t.Errorf("%q: want errors, got listen %q %v, dial %q %v", tc.in, l, lerr, d, derr)
			}
			continue
		}
		if lerr != nil || derr != nil || l != tc.listen || d != tc.dial {
			t.Errorf("%q: listen %q %v, dial %q %v; want %q, %q", tc.in, l, lerr, d, derr, tc.listen, tc.dial)
		}
	}
	if _, err := NewServer("nonsense", nil, nil); err == nil {
		t.Error("NewServer accepted a bad address")
	}
}

// TestServerRun exercises the oklog/run path: Run listens on the configured address, serves, and
// returns nil once its context is cancelled.
func TestServerRun(t *testing.T) {
	tr := NewTracker(nil, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	srv, err := NewServer(addr, tr.Handler(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Errorf("Addr() = %q, want %q", srv.Addr(), addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Eventually(t, 10*time.Second, "status server answering /healthz", func() bool {
		ok, _, err := Check(context.Background(), addr, "/healthz", time.Second)
		return err == nil && ok
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, _, err := Check(context.Background(), addr, "/healthz", time.Second); err == nil {
		t.Error("server still answering after Run returned")
	}
}

func TestServerRunListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := NewServer(l.Addr().String(), NewTracker(nil, nil).Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil {
		t.Fatal("Run on a taken port succeeded")
	}
}

// TestShutdownBeforeServe covers oklog/run interrupting before the actor started serving.
func TestShutdownBeforeServe(t *testing.T) {
	srv, err := NewServer("127.0.0.1:0", NewTracker(nil, nil).Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); err != nil {
		t.Fatalf("Serve after Shutdown: %v, want nil", err)
	}
}
