package synapse

import (
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// top returns the merged value of a top-level key with its file. Absent keys point at the first
// file so a "missing key" finding has somewhere to go.
func (c *Config) top(key string) ref {
	if e, ok := c.index[key]; ok {
		return ref{file: e.file, n: deref(e.value)}
	}
	return ref{file: c.mainFile()}
}

// topKey returns the key node of a top-level key (for findings about the key's mere presence).
func (c *Config) topKey(key string) ref {
	if e, ok := c.index[key]; ok {
		return ref{file: e.file, n: e.keyN}
	}
	return ref{file: c.mainFile()}
}

// mainFile is the first loaded file: where findings about missing keys are reported.
func (c *Config) mainFile() string {
	if len(c.files) == 0 {
		return ""
	}
	return c.files[0].path
}

// Has reports whether a top-level key is set.
func (c *Config) Has(key string) bool {
	_, ok := c.index[key]
	return ok
}

// Node returns the merged value node of a top-level key and the file it came from.
func (c *Config) Node(key string) (*yaml.Node, string) {
	r := c.top(key)
	return r.n, r.file
}

// topString returns a top-level scalar as text.
func (c *Config) topString(key string) string {
	s, _ := c.top(key).str()
	return s
}

// ServerName is the homeserver's server_name (host[:port]).
func (c *Config) ServerName() string { return c.topString("server_name") }

// LogConfigPath is log_config resolved against the working directory, or "" when unset.
func (c *Config) LogConfigPath() string { return c.resolve(c.topString("log_config")) }

// SigningKeyPath is the file Synapse reads its signing key from: signing_key_path resolved against
// the working directory or, when unset, Synapse's default <dir of the last config file>/<server_name>.signing.key.
// It is "" when the key is given inline (signing_key) or cannot be determined.
func (c *Config) SigningKeyPath() string {
	if p := c.topString("signing_key_path"); p != "" {
		return c.resolve(p)
	}
	if c.Has("signing_key") || len(c.files) == 0 {
		return ""
	}
	sn := c.ServerName()
	if sn == "" {
		return ""
	}
	dir := filepath.Dir(c.files[len(c.files)-1].path)
	return filepath.Join(ResolvePath(c.workDir, dir), sn+".signing.key")
}

// MediaStorePath is media_store_path resolved against the working directory; Synapse's default
// is "media_store" in the working directory.
func (c *Config) MediaStorePath() string {
	p := c.topString("media_store_path")
	if p == "" {
		p = "media_store"
	}
	return c.resolve(p)
}

// Database kinds as Synapse names them in database.name.
const (
	DatabaseSQLite   = "sqlite3"
	DatabasePostgres = "psycopg2"
)

// Database returns the database engine (sqlite3 or psycopg2; sqlite3 when no database is
// configured, as in Synapse) and, for sqlite, the database file resolved against the working
// directory ("" when not set).
func (c *Config) Database() (engine, sqlitePath string) {
	db := c.top("database")
	if !db.ok() {
		if dbs := c.top("databases"); dbs.ok() && dbs.n.Kind == yaml.MappingNode && len(dbs.n.Content) >= 2 {
			db = ref{file: dbs.file, n: deref(dbs.n.Content[1])}
		}
	}
	engine = DatabaseSQLite
	if name, ok := db.get("name").str(); ok {
		engine = name
	}
	if engine == DatabaseSQLite {
		if p, ok := db.get("args").get("database").str(); ok && p != ":memory:" {
			sqlitePath = c.resolve(p)
		}
	}
	return engine, sqlitePath
}

// Listener is one `listeners` entry, reduced to what the supervisor needs.
type Listener struct {
	Port          int
	BindAddresses []string
	Type          string
	Resources     []string
	TLS           bool
}

// ProbeHost is the address the supervisor should connect to for this listener: loopback when the
// listener binds a wildcard (or nothing, meaning Synapse's default of all interfaces).
func (l Listener) ProbeHost() string {
	if len(l.BindAddresses) == 0 {
		return "127.0.0.1"
	}
	switch a := l.BindAddresses[0]; a {
	case "0.0.0.0", "":
		return "127.0.0.1"
	case "::":
		return "::1"
	default:
		return a
	}
}

// HTTPListener returns the first port-based `type: http` listener: the one the supervisor probes
// with GET /health. ok is false when there is none.
func (c *Config) HTTPListener() (l Listener, ok bool) {
	for _, it := range c.top("listeners").items() {
		typ, _ := it.get("type").str()
		port, hasPort := it.get("port").integer()
		if typ != "http" || !hasPort || it.has("path") {
			continue
		}
		l = Listener{Port: int(port), Type: typ, TLS: it.get("tls").truthy()}
		l.BindAddresses = it.get("bind_addresses").strList()
		if len(l.BindAddresses) == 0 {
			if a, ok := it.get("bind_address").str(); ok {
				l.BindAddresses = []string{a}
			}
		}
		for _, res := range it.get("resources").items() {
			l.Resources = append(l.Resources, res.get("names").strList()...)
		}
		return l, true
	}
	return Listener{}, false
}

// ReloadableFiles are the files whose content SIGHUP makes Synapse re-read: the log config and the
// TLS certificate and key. A supervisor watches these and sends SIGHUP instead of restarting.
func (c *Config) ReloadableFiles() []string {
	var out []string
	for _, p := range []string{c.LogConfigPath(), c.resolve(c.topString("tls_certificate_path")), c.resolve(c.topString("tls_private_key_path"))} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// resolve makes p absolute against the working directory, as Synapse's os.path.abspath does.
func (c *Config) resolve(p string) string {
	if p == "" {
		return ""
	}
	return ResolvePath(c.workDir, p)
}

// ResolvePath makes p absolute against workDir.
func ResolvePath(workDir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if workDir == "" {
		workDir = "/"
	}
	return filepath.Join(workDir, p)
}

// hasPathPrefix reports whether p is dir or below it.
func hasPathPrefix(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
