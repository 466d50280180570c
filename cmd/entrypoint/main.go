// Command entrypoint is PID 1 of the ovrclk/synapse image: a small init that reaps and relays
// signals (internal/pid1), and a supervisor that runs Synapse, or any command given to it.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ovrclk/synapse-entrypoint/internal/logging"
	"github.com/ovrclk/synapse-entrypoint/internal/pid1"
	"github.com/ovrclk/synapse-entrypoint/internal/status"
	"github.com/ovrclk/synapse-entrypoint/internal/synapse"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes of the entrypoint's own failures (sysexits.h; the packages map their errors to 69
// and 78 themselves). A supervised child's code passes through unchanged; 128+N means it was
// killed by signal N.
const (
	exitInternal = 70
	exitConfig   = 78
)

func main() {
	os.Exit(realMain(os.Args, os.Environ(), os.Stdout, os.Stderr))
}

// realMain dispatches on the role (init or supervisor, see internal/pid1) and the first argument.
func realMain(argv, environ []string, stdout, stderr io.Writer) int {
	isSupervisor, env := pid1.SupervisorRole(environ)
	pid1.ResetIgnoredReserved()
	args := argv[1:]
	// The tutorial ran `ovrclk/synapse /run.sh --generate-config ...`: keep that working.
	if len(args) > 0 && args[0] == "/run.sh" {
		args = args[1:]
	}
	if !isSupervisor && len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			return usage(stdout)
		case "version", "--version":
			fmt.Fprintf(stdout, "entrypoint %s\n", version)
			return 0
		case "check":
			return synapse.RunCheck(args[1:], stdout, stderr, envLookup(env))
		case "init":
			return synapse.RunInit(args[1:], stdout, stderr, envLookup(env))
		case "healthcheck":
			addr, _ := envLookup(env)("STATUS_ADDR")
			if addr == "" {
				addr = status.DefaultAddr
			}
			return status.RunHealthcheck(args[1:], stdout, stderr, addr)
		}
	}
	settings, err := loadSettings()
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	if isSupervisor {
		// The values are in settings now. Libraries that start processes with os.Environ()
		// (kbchat does) must not pass them on.
		for name := range secretEnv {
			os.Unsetenv(name)
		}
	}
	role := "init"
	if isSupervisor {
		role = "supervisor"
	}
	log, flush, err := logging.New(logging.Options{Level: settings.LogLevel, Format: settings.LogFormat, Out: os.Stderr, Name: role})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	defer flush()
	if !isSupervisor {
		return pid1.Run(pid1.Options{Args: argv, Env: env, Grace: settings.DrainTimeout, Log: log})
	}
	mode, cmd := parseMode(args)
	switch mode {
	case modeCommand:
		return superviseCommand(log, settings, cmd, env)
	default:
		return runSynapse(log, settings, cmd, env)
	}
}

type mode int

const (
	modeSynapse mode = iota
	modeCommand
)

// parseMode tells a command to supervise from arguments for Synapse: `-- CMD...` and `CMD...`
// run CMD; no arguments, or arguments starting with "-" (the SDL's `-c /data/homeserver.yaml`),
// run Synapse with them.
func parseMode(args []string) (mode, []string) {
	switch {
	case len(args) > 0 && args[0] == "--":
		if len(args) == 1 {
			return modeSynapse, nil
		}
		return modeCommand, args[1:]
	case len(args) == 0, strings.HasPrefix(args[0], "-"):
		return modeSynapse, args
	default:
		return modeCommand, args
	}
}

func usage(w io.Writer) int {
	fmt.Fprint(w, `Usage:
  entrypoint [SYNAPSE-ARGS...]      run Synapse under supervision (the image's default)
  entrypoint [--] CMD [ARGS...]     supervise any command, like tini
  entrypoint check [PATH...]        validate homeserver.yaml offline (--format json, --strict)
  entrypoint init --server-name N   write a fresh config repository (never overwrites)
  entrypoint healthcheck            exit 0 when Synapse is ready (--live: the entrypoint is alive)
  entrypoint help                   this text
  entrypoint version                print the version

As PID 1 it reaps orphans, relays every catchable signal, and at the end stops what is left
(SIGTERM, DRAIN_TIMEOUT, then SIGKILL). Exit status: the child's own code, 128+N when it was
killed by signal N, 126 not executable, 127 not found; the entrypoint's own failures use
64 usage, 69 service unavailable, 70 internal error, 78 configuration error.

Environment:
`)
	if err := printEnvUsage(w); err != nil {
		fmt.Fprintf(w, "(cannot list variables: %v)\n", err)
		return exitInternal
	}
	return 0
}
