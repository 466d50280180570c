package main

import (
	"fmt"
	"strconv"
	"strings"
)

// flagSpec declares the flags one (sub)command accepts, the way urfave/cli v1 (keybase/cli) sees
// them: every name works with one or two dashes, aliases share a value, bool flags take no argument
// but accept `=true|false`, parsing stops at the first positional argument or `--`.
type flagSpec struct {
	bools  []string // "debug,d": canonical name first, then aliases
	values []string // "home,H"
}

// parsedFlags holds what was given, keyed by canonical name.
type parsedFlags struct {
	bools  map[string]bool
	values map[string]string
	rest   []string
}

func (f parsedFlags) bool(name string) bool    { return f.bools[name] }
func (f parsedFlags) value(name string) string { return f.values[name] }

// parse reads flags from args per spec. An unknown flag is an error with urfave/cli's wording.
func (s flagSpec) parse(args []string) (parsedFlags, error) {
	canon := map[string]string{}
	isBool := map[string]bool{}
	for _, group := range s.bools {
		names := strings.Split(group, ",")
		for _, n := range names {
			canon[strings.TrimSpace(n)] = names[0]
			isBool[strings.TrimSpace(n)] = true
		}
	}
	for _, group := range s.values {
		names := strings.Split(group, ",")
		for _, n := range names {
			canon[strings.TrimSpace(n)] = names[0]
		}
	}
	out := parsedFlags{bools: map[string]bool{}, values: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out.rest = args[i+1:]
			return out, nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out.rest = args[i:]
			return out, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		c, ok := canon[name]
		if !ok {
			return out, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if isBool[name] {
			v := true
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return out, fmt.Errorf("invalid boolean value %q for -%s: %v", value, name, err)
				}
				v = b
			}
			out.bools[c] = v
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return out, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		out.values[c] = value
	}
	return out, nil
}

// globalFlags are the real CLI's global flags (go/libcmdline/cmdline.go plus the fork flags and the
// later bot-lite flag kbchat passes), all accepted before the subcommand. A function, not a
// package variable: nothing in this program is mutable global state.
func globalFlagSpec() flagSpec {
	return flagSpec{
		bools: []string{
			"api-dump-unsafe", "debug,d", "no-debug", "push-disabled", "standalone",
			"bg-identifier-disabled", "auto-fork", "no-auto-fork,F", "enable-bot-lite-mode",
			"use-default-log-file", "slow-gregor-conn", "disable-bot-lite-mode",
		},
		values: []string{
			"api-timeout", "api-uri-path-prefix", "app-start-mode", "code-signing-kids",
			"config-file,c", "db", "chat-db", "pvl-kit", "features", "gpg", "gpg-options", "home,H",
			"local-rpc-debug-unsafe", "log-file", "log-format", "merkle-kids", "pgpdir,gpgdir",
			"pinentry", "pid-file", "proof-cache-size", "proxy", "push-save-interval",
			"push-server-uri", "run-mode", "scraper-timeout", "secret-keyring", "server,s",
			"session-file", "socket-file", "timers", "tor-hidden-address", "tor-mode", "tor-proxy",
			"updater-config-file", "user-cache-size", "vdebug", "label",
		},
	}
}
