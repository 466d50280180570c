// Command clone is one config-repository clone and checkout by the entrypoint's own code
// (internal/configrepo.Ensure, go-git), and nothing else, so that bench/configrepo can read its
// peak resident memory from the kernel (getrusage of the child) and set it beside `git clone`'s.
//
//	clone [-ca FILE] URL TARGET
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/ovrclk/synapse-entrypoint/internal/configrepo"
)

func main() {
	ca := flag.String("ca", "", "PEM file of an extra CA trusted for https")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: clone [-ca FILE] URL TARGET")
		os.Exit(64)
	}
	cfg := configrepo.Config{URL: flag.Arg(0), Target: flag.Arg(1), RetryBudget: -1}
	if *ca != "" {
		b, err := os.ReadFile(*ca)
		if err != nil {
			fmt.Fprintf(os.Stderr, "clone: read CA %s: %v\n", *ca, err)
			os.Exit(66)
		}
		cfg.CABundle = b
	}
	if _, err := configrepo.Ensure(context.Background(), cfg, zap.NewNop()); err != nil {
		fmt.Fprintf(os.Stderr, "clone: %v\n", err)
		os.Exit(configrepo.ExitCode(err))
	}
}
