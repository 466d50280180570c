// Package logging builds the entrypoint's zap logger: JSON when stderr is not a terminal (the
// container log), console for a person at a terminal, and a writer that never blocks, because
// a PID 1 stuck on a full stderr pipe stops reaping and relaying signals.
package logging

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// Options select the level ("debug", "info", "warn", "error") and format ("json", "console" or
// "auto": console when Out is a terminal).
type Options struct {
	Level  string
	Format string
	Out    *os.File
	// Name labels every line ("init", "supervisor").
	Name string
}

// New returns the logger and a flush function to call before exiting.
func New(o Options) (*zap.Logger, func(), error) {
	level, err := zapcore.ParseLevel(o.Level)
	if err != nil {
		return nil, nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", o.Level)
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "json":
		enc = jsonEncoder()
	case "console":
		enc = consoleEncoder()
	case "auto", "":
		if IsTerminal(o.Out) {
			enc = consoleEncoder()
		} else {
			enc = jsonEncoder()
		}
	default:
		return nil, nil, fmt.Errorf("LOG_FORMAT %q: want json, console or auto", o.Format)
	}
	w := NewAsyncWriter(o.Out, 1024)
	log := zap.New(zapcore.NewCore(enc, w, level))
	if o.Name != "" {
		log = log.Named(o.Name)
	}
	return log, func() { _ = w.Sync() }, nil
}

func jsonEncoder() zapcore.Encoder {
	c := zap.NewProductionEncoderConfig()
	c.EncodeTime = zapcore.ISO8601TimeEncoder
	return zapcore.NewJSONEncoder(c)
}

func consoleEncoder() zapcore.Encoder {
	c := zap.NewDevelopmentEncoderConfig()
	c.EncodeLevel = zapcore.CapitalLevelEncoder
	c.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	c.CallerKey, c.StacktraceKey = "", ""
	return zapcore.NewConsoleEncoder(c)
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// AsyncWriter hands each write to a goroutine through a bounded queue. When the queue is full
// (nobody reads the log), lines are dropped and counted instead of blocking the caller.
type AsyncWriter struct {
	out     io.Writer
	queue   chan []byte
	pending atomic.Int64 // queued or being written
	dropped atomic.Uint64
}

// NewAsyncWriter starts the goroutine that writes to out; depth is the queue length in lines.
func NewAsyncWriter(out io.Writer, depth int) *AsyncWriter {
	w := &AsyncWriter{out: out, queue: make(chan []byte, depth)}
	go w.drain()
	return w
}

func (w *AsyncWriter) drain() {
	for b := range w.queue {
		_, _ = w.out.Write(b)
		w.pending.Add(-1)
	}
}

// Write queues a copy of p; it never blocks.
func (w *AsyncWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	w.pending.Add(1)
	select {
	case w.queue <- b:
	default:
		w.pending.Add(-1)
		w.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is the number of lines dropped because the queue was full.
func (w *AsyncWriter) Dropped() uint64 { return w.dropped.Load() }

// Sync waits, at most one second, until every queued line has been written.
func (w *AsyncWriter) Sync() error {
	deadline := time.Now().Add(time.Second)
	for w.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return nil
}
