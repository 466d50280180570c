package status

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// DefaultCheckTimeout bounds one healthcheck request when --timeout is not given. It is below
// Docker's default HEALTHCHECK timeout (30s) so the check reports its own, clearer error first.
const DefaultCheckTimeout = 5 * time.Second

// Exit codes of RunHealthcheck (sysexits, see docs/CONVENTIONS.md).
const (
	ExitHealthy   = 0
	ExitUnhealthy = 1
	ExitUsage     = 64
	ExitConfig    = 78
)

// maxBodyBytes caps what Check reads: the answers are one line, and a wrong server on the port
// must not make the healthcheck buffer megabytes.
const maxBodyBytes = 4 << 10

// Check asks the status server at addr (":8080" means loopback; empty means DefaultAddr) for path
// ("/readyz" when empty) and reports whether it answered 200, with the first line of the body.
// A 503 is an answer, not an error: ok is false and body says why. err is set only when there was
// no usable answer (nothing listening, timeout, an unexpected status), with a message that says
// which.
func Check(ctx context.Context, addr, path string, timeout time.Duration) (ok bool, body string, err error) {
	addr, err = DialAddr(addr)
	if err != nil {
		return false, "", err
	}
	if path == "" {
		path = "/readyz"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, "", fmt.Errorf("healthcheck request %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain")
	client := &http.Client{
		// No proxy from the environment: the server is always local, and a proxy set for
		// Synapse's outbound traffic must not intercept the container's own healthcheck.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, "", explainDialError(addr, path, timeout, err)
	}
	defer resp.Body.Close()
	body = firstLine(io.LimitReader(resp.Body, maxBodyBytes))
	switch resp.StatusCode {
	case http.StatusOK:
		return true, body, nil
	case http.StatusServiceUnavailable:
		return false, body, nil
	default:
		return false, body, fmt.Errorf("GET %s: unexpected %s (is something else listening on %s?)", url, resp.Status, addr)
	}
}

// explainDialError turns the transport's error into the sentence an operator needs: nothing is
// listening, or it did not answer in time, rather than a raw "dial tcp ...: connect: ..." chain.
func explainDialError(addr, path string, timeout time.Duration, err error) error {
	var nerr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing is listening on %s (connection refused): is the entrypoint running, and is its status address %s?", addr, addr)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		return fmt.Errorf("GET http://%s%s: no answer within %s: %w", addr, path, timeout, err)
	default:
		return fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
}

// firstLine returns the first line of r, trimmed, so a healthcheck log entry is one line.
func firstLine(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxBodyBytes)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}

// RunHealthcheck implements `entrypoint healthcheck [--live] [--addr host:port] [--timeout d]`
// for the image's HEALTHCHECK: exit 0 when /readyz (or /healthz with --live) answers 200, 1
// otherwise with the reason line, 64 on a usage error and 78 when defaultAddr (the configured
// status address) is invalid. defaultAddr empty means DefaultAddr.
func RunHealthcheck(args []string, stdout, stderr io.Writer, defaultAddr string) int {
	if defaultAddr == "" {
		defaultAddr = DefaultAddr
	}
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "status server `address` (host:port; :port means 127.0.0.1)")
	timeout := fs.Duration("timeout", DefaultCheckTimeout, "give up after this `duration`")
	live := fs.Bool("live", false, "check liveness (/healthz) instead of readiness (/readyz)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: entrypoint healthcheck [--live] [--addr host:port] [--timeout duration]\n\n"+
			"Exits 0 when the entrypoint is ready (alive with --live), 1 otherwise.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitHealthy
		}
		return ExitUsage // flag already printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "healthcheck: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return ExitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "healthcheck: --timeout must be positive, got %s\n", *timeout)
		return ExitUsage
	}
	if _, err := DialAddr(*addr); err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		if flagWasSet(fs, "addr") {
			return ExitUsage
		}
		return ExitConfig
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	ok, body, err := Check(context.Background(), *addr, path, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return ExitUnhealthy
	}
	if body == "" {
		body = "not ready (empty answer)"
		if ok {
			body = "ok"
		}
	}
	fmt.Fprintln(stdout, body)
	if !ok {
		return ExitUnhealthy
	}
	return ExitHealthy
}

// flagWasSet reports whether name was given on the command line, to tell a usage error (64) from
// a bad configured default (78).
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
