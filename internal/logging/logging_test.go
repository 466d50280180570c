package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ovrclk/synapse-entrypoint/internal/testutil"
)

// blockingWriter never returns from Write until released, like a stderr pipe nobody reads.
type blockingWriter struct{ release chan struct{} }

func (b *blockingWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

func TestAsyncWriterNeverBlocks(t *testing.T) {
	bw := &blockingWriter{release: make(chan struct{})}
	defer close(bw.release)
	w := NewAsyncWriter(bw, 4)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			w.Write([]byte("line\n"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stuck output")
	}
	if w.Dropped() == 0 {
		t.Fatal("expected dropped lines when the output is stuck")
	}
}

func TestAsyncWriterDeliversInOrder(t *testing.T) {
	var buf testutil.Buffer
	w := NewAsyncWriter(&buf, 64)
	for _, s := range []string{"a\n", "b\n", "c\n"} {
		w.Write([]byte(s))
	}
	w.Sync()
	if got := buf.String(); got != "a\nb\nc\n" {
		t.Fatalf("got %q", got)
	}
}

func TestJSONWhenNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	log, flush, err := New(Options{Level: "info", Format: "auto", Out: f, Name: "init"})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello")
	flush()
	b, _ := os.ReadFile(f.Name())
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &m); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", b, err)
	}
	if m["msg"] != "hello" || m["logger"] != "init" {
		t.Fatalf("got %v", m)
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	if _, _, err := New(Options{Level: "loud"}); err == nil {
		t.Fatal("want error for LOG_LEVEL=loud")
	}
	if _, _, err := New(Options{Level: "info", Format: "xml"}); err == nil {
		t.Fatal("want error for LOG_FORMAT=xml")
	}
}
