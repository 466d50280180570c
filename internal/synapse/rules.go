package synapse

// Rule describes one check: its id (stable, kebab-case, used in output and for suppressing in
// tooling), severity, and the Synapse versions it applies to.
type Rule struct {
	ID       string
	Severity Severity
	// Since is the first Synapse release the rule applies to ("" = all releases).
	Since string
	// Until is the first release the rule no longer applies to ("" = still applies).
	Until string
	// Summary says in one line what the rule catches.
	Summary string
}

// applies reports whether the rule is in force for Synapse version v (zero = newest).
func (r Rule) applies(v Version) bool {
	if v.IsZero() {
		return r.Until == ""
	}
	if r.Since != "" && v.Less(mustVersion(r.Since)) {
		return false
	}
	if r.Until != "" && !v.Less(mustVersion(r.Until)) {
		return false
	}
	return true
}

// Rules returns every rule the validator knows, in documentation order. It builds a fresh slice on
// each call so no caller can change the table for another.
func Rules() []Rule {
	E, W := SeverityError, SeverityWarning
	return []Rule{
		// Files and templating (entrypoint rules: no Synapse version).
		{ruleConfigUnreadable, E, "", "", "a config file cannot be read"},
		{ruleYAMLSyntax, E, "", "", "a config file is not valid YAML or has several documents"},
		{ruleYAMLNotMapping, E, "", "", "a config file is empty or its top level is not a mapping"},
		{ruleDuplicateKey, W, "", "", "a top-level key appears twice in one file"},
		{ruleTemplateUnset, E, "", "", "${VAR} or ${VAR:?message} with VAR (and VAR_FILE) unset"},
		{ruleTemplateSyntax, E, "", "", "malformed ${...} template"},
		{ruleTemplateFile, E, "", "", "VAR_FILE names a file that cannot be read"},
		{"template-dollar-escape", W, "", "", "a secret contains $$, which templating turns into $"},

		// Required keys.
		{"server-name-missing", E, "", "", "server_name is not set"},
		{"server-name-invalid", E, "", "", "server_name is not host[:port]"},
		{"report-stats-missing", E, "", "", "report_stats is not set"},
		{"report-stats-not-bool", E, "", "", "report_stats is not true or false"},

		// Database.
		{"database-unknown-engine", E, "", "", "database.name is not sqlite3 or psycopg2"},
		{"database-and-databases", E, "", "", "both database and databases are set"},
		{"database-sqlite", W, "", "", "sqlite is for testing only"},
		{"database-sqlite-with-workers", E, "", "", "workers cannot share a sqlite database"},

		// Registration.
		{"registration-without-verification", E, "1.56", "", "open registration without any verification: Synapse refuses to start"},

		// Secrets.
		{"registration-shared-secret-and-path", E, "1.67", "", "registration_shared_secret and registration_shared_secret_path both set"},
		{"macaroon-secret-key-and-path", E, "1.122", "", "macaroon_secret_key and macaroon_secret_key_path both set"},
		{"form-secret-and-path", E, "1.126", "", "form_secret and form_secret_path both set"},
		{"worker-replication-secret-and-path", E, "1.126", "", "worker_replication_secret and worker_replication_secret_path both set"},
		{"turn-shared-secret-and-path", E, "1.116", "", "turn_shared_secret and turn_shared_secret_path both set"},
		{"redis-password-and-path", E, "1.117", "", "redis.password and redis.password_path both set"},
		{"secret-path-missing", E, "", "", "a *_path secret file is missing or empty"},
		{"secret-path-unsupported", W, "", "", "a *_path secret key is not known to this Synapse version and is ignored"},
		{"secret-published", E, "", "", "a secret is one of the values published in the tutorial or the example config"},
		{"signing-key-published", E, "", "", "the signing key is the example config's, which is published"},
		{"secret-short", W, "", "", "a secret is shorter than 32 characters"},

		// Signing key.
		{"signing-key-invalid", E, "", "", "the signing key file is not in Synapse's format"},
		{"signing-key-missing-existing-db", E, "", "", "the signing key is missing but the database exists"},
		{"signing-key-missing", W, "1.67", "", "the signing key is missing on a fresh server"},
		{"signing-key-required", E, "", "1.67", "the signing key is missing and this Synapse will not start without it"},

		// Volumes.
		{"database-not-on-volume", W, "", "", "the sqlite database is not on a mounted volume"},
		{"media-store-not-on-volume", W, "", "", "the media store is not on a mounted volume"},
		{"signing-key-not-on-volume", W, "", "", "the signing key is not on a mounted volume"},

		// Listeners.
		{"listener-port-or-path", E, "", "", "a listener needs exactly one of port and path"},
		{"listener-port-invalid", E, "", "", "a listener port is not an integer 1-65535"},
		{"listener-unix-socket-unsupported", E, "", "1.81", "unix socket listeners (path) need Synapse 1.81"},
		{"listener-type-invalid", E, "", "", "a listener type is missing or unknown"},
		{"listener-type-replication", E, "1.67", "", "type: replication listeners were removed"},
		{"listener-resource-unknown", E, "", "", "a listener resource name is unknown"},
		{"listener-resource-webclient", E, "1.53", "", "the webclient resource was removed"},
		{"listener-tls-incomplete", E, "", "", "tls: true without tls_certificate_path and tls_private_key_path"},
		{"no-http-listener", E, "", "", "no port-based http listener the supervisor can probe"},

		// Logging.
		{"log-file-removed", E, "1.3", "", "log_file was removed: use log_config"},
		{"log-config-missing", E, "", "", "the log config file does not exist"},
		{"log-config-invalid", E, "", "", "the log config is not a valid logging dictConfig"},
		{"log-config-structured", E, "1.54", "", "structured: true logging was removed"},
		{"log-handler-unwritable", E, "", "", "a log handler writes to a file in a directory that is not writable"},

		// Removed or misplaced keys.
		{"acme-removed", W, "1.37", "", "acme support was removed: the section is ignored"},
		{"uploads-path-removed", W, "1.29", "", "uploads_path is ignored"},
		{"trusted-third-party-id-servers-removed", W, "1.48", "", "trusted_third_party_id_servers is ignored"},
		{"search-all-users-misplaced", W, "", "", "search_all_users belongs under user_directory"},
		{"federation-ip-range-blacklist-deprecated", W, "1.25", "", "federation_ip_range_blacklist is deprecated: use ip_range_blacklist"},
		{"ip-range-blocklist-not-a-key", W, "", "", "ip_range_blocklist is not a Synapse key"},

		// Key servers.
		{"trusted-key-servers-unset", W, "", "", "trusted_key_servers is not set: matrix.org is used and Synapse warns"},
		{"trusted-key-servers-matrix-org", W, "", "", "matrix.org as key server without suppress_key_server_warning: true"},

		// Value formats.
		{"duration-invalid", E, "", "", "a duration is not a number of ms or a number with s, m, h, d, w or y"},
		{"size-invalid", E, "", "", "a size is not a number or a number with K, M, G or T"},
		{"public-baseurl-invalid", E, "", "", "public_baseurl is not an http(s) URL without query or fragment"},

		// Workers.
		{"worker-replication-legacy", E, "1.86", "", "a worker config still uses worker_replication_host/_http_port/_http_tls: use instance_map"},
		{"worker-replication-ignored", W, "1.86", "", "the main config carries worker_replication_host/_http_port/_http_tls, which it ignores"},
		{"workers-need-redis", E, "", "", "workers are configured without redis.enabled: true"},
		{"workers-need-instance-map-main", E, "1.84", "", "workers are configured without instance_map.main"},
	}
}

// ruleByID returns the rule with the given id; unknown ids (a programming error) come back as an
// error-severity rule so nothing is silently downgraded.
func ruleByID(id string) Rule {
	for _, r := range Rules() {
		if r.ID == id {
			return r
		}
	}
	return Rule{ID: id, Severity: SeverityError}
}
