package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// redacted replaces a paper key wherever it appears in a recorded argv.
const redacted = "<redacted>"

// invocation is one line of $FAKEKEYBASE_LOG. It says what was run, whether the paper key was
// exposed in argv (world-readable in /proc) or passed through the environment, as which user, and how
// it ended — never the key itself.
type invocation struct {
	TS             string   `json:"ts"`
	End            string   `json:"end"`
	PID            int      `json:"pid"`
	Argv0          string   `json:"argv0"`
	Args           []string `json:"args"`
	PaperkeyInArgv bool     `json:"paperkey_in_argv"`
	PaperkeyInEnv  bool     `json:"paperkey_in_env"`
	UID            int      `json:"uid"`
	Exit           int      `json:"exit"`
}

// record appends this invocation to $FAKEKEYBASE_LOG (when set) with one write, so concurrent
// invocations (the service, kbfsfuse, several CLI calls) never interleave inside a line.
func (p *proc) record(code int) {
	path := p.getenv("FAKEKEYBASE_LOG")
	if path == "" {
		return
	}
	args, inArgv := redactArgs(p.args)
	line, err := json.Marshal(invocation{
		TS:             p.start.UTC().Format(time.RFC3339Nano),
		End:            time.Now().UTC().Format(time.RFC3339Nano),
		PID:            p.pid,
		Argv0:          p.argv0,
		Args:           args,
		PaperkeyInArgv: inArgv,
		PaperkeyInEnv:  p.getenv("KEYBASE_PAPERKEY") != "",
		UID:            p.euid,
		Exit:           code,
	})
	if err != nil {
		fmt.Fprintf(p.stderr, "fakekeybase: encode log line: %v\n", err)
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(p.stderr, "fakekeybase: open %s: %v\n", path, err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		fmt.Fprintf(p.stderr, "fakekeybase: write %s: %v\n", path, err)
	}
}

// redactArgs copies argv with every paper key value (`-p K`, `--paperkey K`, `-p=K`,
// `--paperkey=K`, single or double dash, as urfave/cli accepts) replaced, and reports whether one
// was there.
func redactArgs(args []string) ([]string, bool) {
	out := make([]string, len(args))
	copy(out, args)
	found := false
	for i := 0; i < len(out); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		if !strings.HasPrefix(out[i], "-") || (name != "p" && name != "paperkey") {
			continue
		}
		found = true
		if hasValue {
			out[i] = out[i][:len(out[i])-len(value)] + redacted
			continue
		}
		if i+1 < len(out) {
			out[i+1] = redacted
			i++
		}
	}
	return out, found
}
