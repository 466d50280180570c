package keybase

import (
	"strings"
)

// secretVars never reach a Keybase child through the base environment: the paper key goes only into
// the oneshot's environment, added explicitly.
var secretVars = []string{"KEYBASE_PAPERKEY", "KEYBASE_PAPERKEY_FILE"}

// childEnv is the environment of the daemons and of every CLI call: the caller's scrubbed base
// environment without any paper key variable, with HOME (and USER/LOGNAME) of the identity Keybase
// runs as, and KEYBASE_ALLOW_ROOT=1 only when it runs as root by the operator's choice.
func childEnv(base []string, id identity, home string) []string {
	drop := map[string]bool{"HOME": true, "USER": true, "LOGNAME": true, "KEYBASE_ALLOW_ROOT": true}
	for _, v := range secretVars {
		drop[v] = true
	}
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			env = append(env, kv)
		}
	}
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	env = append(env, "HOME="+home, "USER="+id.name, "LOGNAME="+id.name)
	if id.asRoot {
		env = append(env, "KEYBASE_ALLOW_ROOT=1")
	}
	return env
}

// oneshotEnv is childEnv plus the paper key: the only environment that ever holds it.
func oneshotEnv(key Secret) []string {
	return []string{"KEYBASE_PAPERKEY=" + key.Reveal()}
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// shellQuote quotes s for a POSIX shell: inside single quotes, each quote closes, escapes and reopens.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// validEnvName reports whether name can be exported by a POSIX shell.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
