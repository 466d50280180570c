package synapse

import "os"

// Env looks up environment variables. It is passed explicitly so that templating and version
// detection are deterministic in tests and never depend on the process environment by accident.
type Env interface {
	Lookup(name string) (string, bool)
}

// EnvFunc adapts a plain lookup function (such as os.LookupEnv) to Env.
type EnvFunc func(name string) (string, bool)

// Lookup calls f.
func (f EnvFunc) Lookup(name string) (string, bool) { return f(name) }

// MapEnv is an Env backed by a map, for tests and for callers that build an environment themselves.
type MapEnv map[string]string

// Lookup returns the value of name in m.
func (m MapEnv) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// OSEnv returns the process environment as an Env. It is the only place in this package that
// touches the real environment, so callers decide explicitly when it is used.
func OSEnv() Env { return EnvFunc(os.LookupEnv) }

// lookupEnv is Lookup on a possibly nil Env (nil behaves like an empty environment).
func lookupEnv(env Env, name string) (string, bool) {
	if env == nil {
		return "", false
	}
	return env.Lookup(name)
}
