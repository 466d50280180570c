package status

import (
	"fmt"
	"net"
	"strconv"
)

// DefaultAddr is where the status server listens unless configured otherwise. Loopback is enough
// for the image's HEALTHCHECK, which runs `entrypoint healthcheck` inside the container; exposing
// /metrics beyond the container is an explicit operator decision (e.g. ":9000").
const DefaultAddr = "127.0.0.1:8080"

// ListenAddr validates a listen address: "host:port", or ":port" for every interface (Go's usual
// meaning). Empty means DefaultAddr. It fails early, at configuration time, instead of when the
// server starts after Keybase and the clone.
func ListenAddr(addr string) (string, error) {
	if addr == "" {
		return DefaultAddr, nil
	}
	if _, _, err := splitAddr(addr); err != nil {
		return "", err
	}
	return addr, nil
}

// DialAddr turns a listen-style address into one a client on the same host can dial: ":8080",
// "0.0.0.0:8080" and "[::]:8080" become loopback, since the healthcheck always runs next to the
// server. Empty means DefaultAddr.
func DialAddr(addr string) (string, error) {
	if addr == "" {
		return DefaultAddr, nil
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return "", err
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// splitAddr splits host:port and checks the port is a number in range, with the address in the
// error so a typo in the environment is easy to find.
func splitAddr(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("status address %q: want host:port or :port: %w", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("status address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	return host, port, nil
}
