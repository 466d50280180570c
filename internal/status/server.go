package status

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Timeouts of the status server. They are short because every response is tiny and local; a
// client that holds a connection open (slowloris) must not pin the entrypoint's goroutines.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	// ShutdownTimeout bounds the graceful shutdown in Run: in-flight requests get this long
	// before connections are closed, so stopping the container is never held up by a scraper.
	ShutdownTimeout = 5 * time.Second
)

// Server serves a status Handler over HTTP. It fits oklog/run either way:
//
//	g.Add(func() error { return srv.Run(ctx) }, func(error) { cancel() })
//	g.Add(func() error { return srv.Serve(l) }, func(error) { _ = srv.Shutdown(shutdownCtx) })
type Server struct {
	addr string
	srv  *http.Server
}

// NewServer returns a server for h on addr (see ListenAddr: "host:port", ":port", empty for
// DefaultAddr). log receives the HTTP server's own errors (TLS probes, malformed requests); nil
// discards them.
func NewServer(addr string, h http.Handler, log *zap.Logger) (*Server, error) {
	addr, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	errLog, err := zap.NewStdLogAt(log.Named("status-http"), zap.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("status server logger: %w", err)
	}
	return &Server{
		addr: addr,
		srv: &http.Server{
			Addr:              addr,
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		},
	}, nil
}

// Addr returns the configured listen address.
func (s *Server) Addr() string { return s.addr }

// Serve serves on l until Shutdown, then returns nil; any other error is returned wrapped. It
// takes a listener so tests (and socket activation) can bind first and never race for a port.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("status server on %s: %w", l.Addr(), err)
}

// Run listens on the configured address and serves until ctx is done, then shuts down gracefully
// within ShutdownTimeout. A cancelled ctx is the normal way to stop, so it returns nil then.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("status server listen %s: %w", s.addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutErr := s.Shutdown(sctx)
	if err := <-errc; err != nil {
		return err
	}
	return shutErr
}

// Shutdown stops accepting connections and waits for in-flight requests until ctx is done; then
// it closes whatever is left, so the caller's deadline is a hard bound.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close() // the deadline passed; drop the stragglers
		return fmt.Errorf("status server shutdown on %s: %w", s.addr, err)
	}
	return nil
}
