package synapse

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkRequired: Synapse refuses to start without server_name and report_stats.
func (v *validator) checkRequired() {
	sn := v.c.top("server_name")
	if sn.isNull() {
		v.report("server-name-missing", v.c.topKey("server_name"), "server_name is not set: set it to the domain users will have in their ids, e.g. server_name: example.org")
	} else if s, ok := sn.str(); !ok || !sn.isString() || !validServerName(s) {
		v.report("server-name-invalid", sn, "server_name %q is not host[:port]: use a DNS name or IP literal, optionally with :port", truncate(sn.n.Value, 60))
	}
	rs := v.c.top("report_stats")
	if !v.c.Has("report_stats") {
		v.report("report-stats-missing", rs, "report_stats is not set: Synapse refuses to start; add report_stats: false (or true to send anonymous usage statistics)")
	} else if _, isBool := rs.pyBool(); !isBool {
		v.report("report-stats-not-bool", rs, "report_stats must be true or false: Synapse treats any non-empty string as true, so \"no\" would send statistics")
	}
}

var hostLabelRE = regexp.MustCompile(`^[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*$`)

// validServerName mirrors Synapse's parse_and_validate_server_name: a DNS name, IPv4 address or
// bracketed IPv6 address, optionally followed by :port.
func validServerName(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[1:end], s[end+1:]
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return false
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return false
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(s, ":") {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return false
		}
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return false
		}
	}
	if strings.HasPrefix(s, "[") {
		return true
	}
	return hostLabelRE.MatchString(host) && len(host) <= 255
}

// workersConfigured reports whether this is a worker deployment (a worker config or a main config
// that hands work to other instances).
func (v *validator) workersConfigured() bool {
	if v.c.Has("worker_app") || v.c.Has("worker_name") {
		return true
	}
	if im := v.c.top("instance_map"); im.ok() && im.n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(im.n.Content); i += 2 {
			if im.n.Content[i].Value != "main" {
				return true
			}
		}
	}
	for _, k := range []string{"stream_writers", "federation_sender_instances", "pusher_instances"} {
		if v.c.top(k).truthy() {
			return true
		}
	}
	return false
}

// checkDatabase: engine name, database vs databases, and sqlite's limits.
func (v *validator) checkDatabase() {
	db, dbs := v.c.top("database"), v.c.top("databases")
	if db.ok() && dbs.ok() {
		v.report("database-and-databases", v.c.topKey("databases"), "both database and databases are set: keep only one (database for a single database)")
	}
	var configs []ref
	if db.ok() {
		configs = append(configs, db)
	} else if dbs.ok() && dbs.n.Kind == yaml.MappingNode {
		for i := 1; i < len(dbs.n.Content); i += 2 {
			configs = append(configs, ref{file: dbs.file, n: deref(dbs.n.Content[i])})
		}
	}
	sqlite := len(configs) == 0
	at := v.c.topKey("database")
	for _, cfg := range configs {
		name := cfg.get("name")
		engine, ok := name.str()
		switch {
		case !ok || engine == DatabaseSQLite:
			sqlite = true
			if name.ok() {
				at = name
			} else {
				at = cfg
			}
		case engine != DatabasePostgres:
			v.report("database-unknown-engine", name, "database.name %q is not a Synapse database engine: use psycopg2 (PostgreSQL) or sqlite3", truncate(engine, 40))
		}
	}
	if !sqlite {
		return
	}
	if v.workersConfigured() {
		v.report("database-sqlite-with-workers", at, "workers are configured but the database is sqlite3, which only one process can use: switch to PostgreSQL (database.name: psycopg2)")
		return
	}
	v.report("database-sqlite", at, "sqlite3 is for testing and small servers only: use PostgreSQL (database.name: psycopg2) for anything that matters")
}

// checkRegistration: since 1.56 Synapse refuses open registration without verification.
func (v *validator) checkRegistration() {
	if !v.c.top("enable_registration").truthy() {
		return
	}
	for _, k := range []string{"enable_registration_without_verification", "registrations_require_3pid", "enable_registration_captcha", "registration_requires_token"} {
		if v.c.top(k).truthy() {
			return
		}
	}
	v.report("registration-without-verification", v.c.top("enable_registration"),
		"enable_registration is true without any verification and Synapse refuses to start: set enable_registration: false, "+
			"or require registration_requires_token: true, registrations_require_3pid or enable_registration_captcha "+
			"(enable_registration_without_verification: true opens the server to spam bots)")
}

// checkKeyServers: without trusted_key_servers, or with matrix.org and no suppression, Synapse
// logs a warning on every start.
func (v *validator) checkKeyServers() {
	tks := v.c.top("trusted_key_servers")
	if !v.c.Has("trusted_key_servers") {
		v.report("trusted-key-servers-unset", tks, "trusted_key_servers is not set: Synapse uses matrix.org and warns at every start; set trusted_key_servers: [{server_name: matrix.org}] and suppress_key_server_warning: true, or name your own key servers")
		return
	}
	if v.c.top("suppress_key_server_warning").truthy() {
		return
	}
	for _, it := range tks.items() {
		if s, _ := it.get("server_name").str(); s == "matrix.org" {
			v.report("trusted-key-servers-matrix-org", it, "matrix.org is a trusted key server and Synapse warns about it at every start: add suppress_key_server_warning: true once you accept that")
			return
		}
	}
}

// checkRemovedKeys: keys Synapse silently ignores, so the operator believes a setting is active.
func (v *validator) checkRemovedKeys() {
	msgs := []struct{ key, rule, msg string }{
		{"acme", "acme-removed", "acme was removed in Synapse 1.37 and this section is ignored: delete it and terminate TLS in a reverse proxy or set tls_certificate_path"},
		{"uploads_path", "uploads-path-removed", "uploads_path is ignored since Synapse 1.29: delete it"},
		{"trusted_third_party_id_servers", "trusted-third-party-id-servers-removed", "trusted_third_party_id_servers is ignored since Synapse 1.48: delete it"},
		{"search_all_users", "search-all-users-misplaced", "search_all_users at the top level is ignored: move it under user_directory (user_directory: {search_all_users: ...})"},
		{"federation_ip_range_blacklist", "federation-ip-range-blacklist-deprecated", "federation_ip_range_blacklist is deprecated since Synapse 1.25: rename it to ip_range_blacklist"},
		{"ip_range_blocklist", "ip-range-blocklist-not-a-key", "ip_range_blocklist is not a Synapse key and is ignored: the key is ip_range_blacklist"},
	}
	for _, m := range msgs {
		if v.c.Has(m.key) {
			v.report(m.rule, v.c.topKey(m.key), "%s", m.msg)
		}
	}
}

// checkWorkers: legacy replication keys and what a worker deployment needs.
func (v *validator) checkWorkers() {
	worker := v.c.Has("worker_app") || v.c.Has("worker_name")
	for _, k := range []string{"worker_replication_host", "worker_replication_http_port", "worker_replication_http_tls"} {
		if !v.c.top(k).truthy() {
			continue
		}
		if worker {
			v.report("worker-replication-legacy", v.c.topKey(k), "%s was removed in Synapse 1.86 and workers refuse to start with it: describe the main process in instance_map.main (host, port) instead", k)
		} else {
			v.report("worker-replication-ignored", v.c.topKey(k), "%s is ignored by the main process (and removed since Synapse 1.86): delete it, workers find the main process through instance_map.main", k)
		}
	}
	if !v.workersConfigured() {
		return
	}
	if !v.c.top("redis").get("enabled").truthy() {
		v.report("workers-need-redis", v.c.topKey("redis"), "workers are configured but redis.enabled is not true: workers replicate through Redis, set redis: {enabled: true, host: ..., port: ...}")
	}
	if !v.c.top("instance_map").get("main").ok() {
		v.report("workers-need-instance-map-main", v.c.topKey("instance_map"), "workers are configured but instance_map.main is missing: add instance_map: {main: {host: ..., port: ...}} pointing at the main process's replication listener")
	}
}

// checkPublicBaseURL: Synapse builds client-visible links from it.
func (v *validator) checkPublicBaseURL() {
	r := v.c.top("public_baseurl")
	if r.isNull() {
		return
	}
	s, ok := r.str()
	u, err := url.Parse(s)
	if !ok || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.report("public-baseurl-invalid", r, "public_baseurl must be an http:// or https:// URL, e.g. https://matrix.example.org/")
		return
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		v.report("public-baseurl-invalid", r, "public_baseurl must not have a query (?) or fragment (#)")
	}
}

// checkListeners: each listener's shape, and that one http listener exists for the supervisor's
// /health probe.
func (v *validator) checkListeners() {
	ls := v.c.top("listeners")
	probe := false
	for _, it := range ls.items() {
		if it.n.Kind != yaml.MappingNode {
			v.report("listener-type-invalid", it, "a listener must be a mapping with port (or path), type and resources")
			continue
		}
		hasPort, hasPath := !it.get("port").isNull(), !it.get("path").isNull()
		if hasPort == hasPath {
			v.report("listener-port-or-path", it, "a listener needs exactly one of port (TCP) and path (unix socket)")
		}
		if hasPath {
			v.report("listener-unix-socket-unsupported", it.get("path"), "unix socket listeners (path) need Synapse 1.81 or later (this is %s): use port, or upgrade", v.opts.Version)
		}
		portOK := false
		if hasPort {
			p, ok := it.get("port").integer()
			portOK = ok && p >= 1 && p <= 65535
			if !portOK {
				v.report("listener-port-invalid", it.get("port"), "listener port must be an integer from 1 to 65535")
			}
		}
		typ, _ := it.get("type").str()
		switch typ {
		case "http", "manhole", "metrics":
		case "replication":
			v.report("listener-type-replication", it.get("type"), "type: replication listeners were removed in Synapse 1.67: use a type: http listener with the replication resource")
		case "":
			v.report("listener-type-invalid", it, "listener has no type: add type: http (or metrics, manhole)")
		default:
			v.report("listener-type-invalid", it.get("type"), "listener type %q is unknown: use http, metrics or manhole", truncate(typ, 30))
		}
		v.checkListenerResources(it)
		if it.get("tls").truthy() && (v.c.top("tls_certificate_path").isNull() || v.c.top("tls_private_key_path").isNull()) {
			v.report("listener-tls-incomplete", it.get("tls"), "tls: true needs tls_certificate_path and tls_private_key_path at the top level: set both, or set tls: false and terminate TLS in a proxy")
		}
		if typ == "http" && hasPort && !hasPath && portOK {
			probe = true
		}
	}
	if !probe {
		at := v.c.topKey("listeners")
		v.report("no-http-listener", at, "no port-based type: http listener: the supervisor cannot probe /health; add listeners: [{port: 8008, type: http, bind_addresses: ['0.0.0.0'], resources: [{names: [client, federation]}]}]")
	}
}

// checkListenerResources validates resource names.
func (v *validator) checkListenerResources(it ref) {
	for _, res := range it.get("resources").items() {
		for _, nm := range res.get("names").items() {
			name, _ := nm.str()
			switch name {
			case "client", "consent", "federation", "health", "keys", "media", "metrics", "openid", "replication", "static":
			case "webclient":
				if v.versionAtLeast("1.53") {
					v.report("listener-resource-webclient", nm, "the webclient resource was removed in Synapse 1.53: delete it and serve a web client (Element) separately")
				}
			default:
				v.report("listener-resource-unknown", nm, "listener resource %q is unknown: use client, federation, media, metrics, health, keys, openid, replication, consent or static", truncate(name, 30))
			}
		}
	}
}

// checkVolumes: state outside a mounted volume is lost when the container is replaced.
func (v *validator) checkVolumes() {
	if !v.mountsOK {
		return
	}
	check := func(rule, what, p string, at ref) {
		if p == "" {
			return
		}
		real := p
		if v.opts.Root == "" || v.opts.Root == "/" {
			real = resolveExisting(p)
		}
		if ok, m := onVolume(v.mounts, real); !ok {
			v.report(rule, at, "%s %s is on %s (%s), not on a mounted volume: it will be lost when the container is replaced; mount a persistent volume (e.g. at /data) and keep it there",
				what, p, mountDesc(m), m.FSType)
		}
	}
	if engine, p := v.c.Database(); engine == DatabaseSQLite {
		at := v.c.top("database").get("args").get("database")
		check("database-not-on-volume", "the sqlite database", p, at)
	}
	at := v.c.top("media_store_path")
	if !at.ok() {
		at = ref{file: v.c.mainFile()}
	}
	check("media-store-not-on-volume", "the media store", v.c.MediaStorePath(), at)
	check("signing-key-not-on-volume", "the signing key", v.c.SigningKeyPath(), v.c.top("signing_key_path"))
}

// mountDesc names a mount for messages.
func mountDesc(m Mount) string {
	if m.MountPoint == "/" {
		return "the container's root filesystem"
	}
	return "the mount at " + m.MountPoint
}
