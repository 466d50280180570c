package synapse

import (
	"os"
	"strings"
	"testing"
)

func TestBaseConfigIsClean(t *testing.T) {
	fs := checkText(t, buildConfig(nil), nil, nil, "")
	if len(fs) != 0 {
		t.Fatalf("base config should be clean, got:\n%s", joinFindings(fs))
	}
}

func joinFindings(fs Findings) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// ruleCase is one firing or non-firing example for a rule.
type ruleCase struct {
	name    string
	set     map[string]string // top-level overrides of the base config
	files   map[string]string // extra files below the root
	env     MapEnv
	version string // Synapse version; "" = newest
	rule    string
	fire    bool
}

func ruleCases() []ruleCase {
	const webListener = "\n  - port: 8008\n    type: http\n    resources:\n      - names: [client, webclient]"
	return []ruleCase{
		// Required keys.
		{name: "server_name missing", set: map[string]string{"server_name": deleteKey}, rule: "server-name-missing", fire: true},
		{name: "server_name present", rule: "server-name-missing"},
		{name: "server_name with scheme", set: map[string]string{"server_name": `"https://example.org"`}, rule: "server-name-invalid", fire: true},
		{name: "server_name bad port", set: map[string]string{"server_name": `"example.org:99999"`}, rule: "server-name-invalid", fire: true},
		{name: "server_name with port", set: map[string]string{"server_name": `"example.org:8448"`}, rule: "server-name-invalid"},
		{name: "server_name ipv6", set: map[string]string{"server_name": `"[::1]:8448"`}, rule: "server-name-invalid"},
		{name: "report_stats missing", set: map[string]string{"report_stats": deleteKey}, rule: "report-stats-missing", fire: true},
		{name: "report_stats string", set: map[string]string{"report_stats": `"no"`}, rule: "report-stats-not-bool", fire: true},
		{name: "report_stats yes (YAML 1.1 bool)", set: map[string]string{"report_stats": "yes"}, rule: "report-stats-not-bool"},

		// Database.
		{name: "unknown engine", set: map[string]string{"database": "\n  name: mysql"}, rule: "database-unknown-engine", fire: true},
		{name: "postgres engine", rule: "database-unknown-engine"},
		{name: "database and databases", set: map[string]string{"databases": "\n  main:\n    name: psycopg2"}, rule: "database-and-databases", fire: true},
		{name: "only databases", set: map[string]string{"database": deleteKey, "databases": "\n  main:\n    name: psycopg2"}, rule: "database-and-databases"},
		{name: "sqlite", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db"}, rule: "database-sqlite", fire: true},
		{name: "no database section means sqlite", set: map[string]string{"database": deleteKey}, rule: "database-sqlite", fire: true},
		{name: "postgres is not sqlite", rule: "database-sqlite"},
		{name: "sqlite with workers", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db", "stream_writers": "\n  events: worker1"}, rule: "database-sqlite-with-workers", fire: true},
		{name: "sqlite without workers", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db"}, rule: "database-sqlite-with-workers"},

		// Registration.
		{name: "open registration", set: map[string]string{"enable_registration": "true"}, rule: "registration-without-verification", fire: true},
		{name: "open registration as string", set: map[string]string{"enable_registration": `"true"`}, rule: "registration-without-verification", fire: true},
		{name: "open registration before 1.56", set: map[string]string{"enable_registration": "true"}, version: "1.55.0", rule: "registration-without-verification"},
		{name: "registration with token", set: map[string]string{"enable_registration": "true", "registration_requires_token": "true"}, rule: "registration-without-verification"},
		{name: "registration with 3pid", set: map[string]string{"enable_registration": "true", "registrations_require_3pid": "[email]"}, rule: "registration-without-verification"},
		{name: "registration with captcha", set: map[string]string{"enable_registration": "true", "enable_registration_captcha": "true"}, rule: "registration-without-verification"},
		{name: "registration explicitly unverified", set: map[string]string{"enable_registration": "true", "enable_registration_without_verification": "true"}, rule: "registration-without-verification"},
		{name: "registration disabled", set: map[string]string{"enable_registration": "false"}, rule: "registration-without-verification"},

		// Secret pairs, each gated by its release.
		{name: "registration secret and path", set: map[string]string{"registration_shared_secret_path": "/data/reg"}, files: map[string]string{"data/reg": goodSecret3}, rule: "registration-shared-secret-and-path", fire: true},
		{name: "registration secret and path before 1.67", set: map[string]string{"registration_shared_secret_path": "/data/reg"}, files: map[string]string{"data/reg": goodSecret3}, version: "1.66.0", rule: "registration-shared-secret-and-path"},
		{name: "registration path only", set: map[string]string{"registration_shared_secret": deleteKey, "registration_shared_secret_path": "/data/reg"}, files: map[string]string{"data/reg": goodSecret3}, rule: "registration-shared-secret-and-path"},
		{name: "macaroon and path", set: map[string]string{"macaroon_secret_key_path": "/data/mac"}, files: map[string]string{"data/mac": goodSecret3}, rule: "macaroon-secret-key-and-path", fire: true},
		{name: "macaroon and path on 1.121", set: map[string]string{"macaroon_secret_key_path": "/data/mac"}, files: map[string]string{"data/mac": goodSecret3}, version: "1.121.0", rule: "macaroon-secret-key-and-path"},
		{name: "form secret and path", set: map[string]string{"form_secret_path": "/data/form"}, files: map[string]string{"data/form": goodSecret3}, rule: "form-secret-and-path", fire: true},
		{name: "form secret and path on 1.125", set: map[string]string{"form_secret_path": "/data/form"}, files: map[string]string{"data/form": goodSecret3}, version: "1.125.0", rule: "form-secret-and-path"},
		{name: "worker replication secret and path", set: map[string]string{"worker_replication_secret": `"` + goodSecret1 + `x"`, "worker_replication_secret_path": "/data/wr"}, files: map[string]string{"data/wr": goodSecret3}, rule: "worker-replication-secret-and-path", fire: true},
		{name: "turn secret and path", set: map[string]string{"turn_shared_secret": `"` + goodSecret1 + `x"`, "turn_shared_secret_path": "/data/turn"}, files: map[string]string{"data/turn": goodSecret3}, rule: "turn-shared-secret-and-path", fire: true},
		{name: "turn secret and path on 1.115", set: map[string]string{"turn_shared_secret": `"` + goodSecret1 + `x"`, "turn_shared_secret_path": "/data/turn"}, files: map[string]string{"data/turn": goodSecret3}, version: "1.115.0", rule: "turn-shared-secret-and-path"},
		{name: "redis password and path", set: map[string]string{"redis": "\n  enabled: true\n  password: \"" + goodSecret1 + "\"\n  password_path: /data/redis"}, files: map[string]string{"data/redis": goodSecret3}, rule: "redis-password-and-path", fire: true},
		{name: "redis password only", set: map[string]string{"redis": "\n  enabled: true\n  password: \"" + goodSecret1 + "\""}, rule: "redis-password-and-path"},
		{name: "secret path missing", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/nope"}, rule: "secret-path-missing", fire: true},
		{name: "secret path empty", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/empty"}, files: map[string]string{"data/empty": "\n"}, rule: "secret-path-missing", fire: true},
		{name: "secret path present", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/form"}, files: map[string]string{"data/form": goodSecret3 + "\n"}, rule: "secret-path-missing"},
		{name: "secret path before its release", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/form"}, files: map[string]string{"data/form": goodSecret3}, version: "1.120.0", rule: "secret-path-unsupported", fire: true},
		{name: "secret path after its release", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/form"}, files: map[string]string{"data/form": goodSecret3}, rule: "secret-path-unsupported"},

		// Published and short secrets.
		{name: "tutorial registration secret", set: map[string]string{"registration_shared_secret": `"` + TutorialRegistrationSharedSecret + `"`}, rule: "secret-published", fire: true},
		{name: "tutorial secret under another key", set: map[string]string{"form_secret": `"` + TutorialMacaroonSecretKey + `"`}, rule: "secret-published", fire: true},
		{name: "tutorial secret in a path file", set: map[string]string{"form_secret": deleteKey, "form_secret_path": "/data/form"}, files: map[string]string{"data/form": TutorialFormSecret + "\n"}, rule: "secret-published", fire: true},
		{name: "tutorial secret from env", set: map[string]string{"macaroon_secret_key": `"${MAC}"`}, env: MapEnv{"MAC": TutorialMacaroonSecretKey}, rule: "secret-published", fire: true},
		{name: "fresh secrets", rule: "secret-published"},
		{name: "short secret", set: map[string]string{"form_secret": `"short"`}, rule: "secret-short", fire: true},
		{name: "31 characters", set: map[string]string{"form_secret": `"` + strings.Repeat("x", 31) + `"`}, rule: "secret-short", fire: true},
		{name: "32 characters", set: map[string]string{"form_secret": `"` + strings.Repeat("x", 32) + `"`}, rule: "secret-short"},

		// Signing key.
		{name: "example signing key", files: map[string]string{"data/example.org.signing.key": "ed25519 a_Mx01 " + ExampleSigningKeySeed + "\n"}, rule: "signing-key-published", fire: true},
		{name: "own signing key", rule: "signing-key-published"},
		{name: "example registration secret", set: map[string]string{"registration_shared_secret": `"` + ExampleRegistrationSharedSecret + `"`}, rule: "secret-published", fire: true},
		{name: "signing key garbage", files: map[string]string{"data/example.org.signing.key": "not a key\n"}, rule: "signing-key-invalid", fire: true},
		{name: "signing key short seed", files: map[string]string{"data/example.org.signing.key": "ed25519 a_AbC1 AAAA\n"}, rule: "signing-key-invalid", fire: true},
		{name: "signing key wrong algorithm", files: map[string]string{"data/example.org.signing.key": "rsa a_AbC1 nJ4Dw6bI3ITw7Wq2GgTvKXqBrjLRtaBNFeM7vbyJZ6I\n"}, rule: "signing-key-invalid", fire: true},
		{name: "signing key with blank lines (Synapse skips them)", files: map[string]string{"data/example.org.signing.key": "\n" + goodKeyLine + "\n\n"}, rule: "signing-key-invalid"},
		{name: "signing key file blank", files: map[string]string{"data/example.org.signing.key": "\n \n"}, rule: "signing-key-invalid", fire: true},
		{name: "inline signing key", set: map[string]string{"signing_key_path": deleteKey, "signing_key": `"` + goodKeyLine + `"`}, files: map[string]string{"data/example.org.signing.key": deleteKey}, rule: "signing-key-missing"},
		{name: "inline signing key bad", set: map[string]string{"signing_key_path": deleteKey, "signing_key": `"ed25519 a_x AAAA"`}, rule: "signing-key-invalid", fire: true},
		{name: "default signing key path next to the config", set: map[string]string{"signing_key_path": deleteKey}, files: map[string]string{"data/example.org.signing.key": deleteKey}, rule: "signing-key-missing", fire: true},
		{name: "two signing keys", files: map[string]string{"data/example.org.signing.key": goodKeyLine + "\ned25519 a_old1 nJ4Dw6bI3ITw7Wq2GgTvKXqBrjLRtaBNFeM7vbyJZ6I\n"}, rule: "signing-key-invalid"},
		{name: "second key bad", files: map[string]string{"data/example.org.signing.key": goodKeyLine + "\ned25519 a_old1 @@@\n"}, rule: "signing-key-invalid", fire: true},
		{name: "signing key missing, sqlite db exists", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db"}, files: map[string]string{"data/example.org.signing.key": deleteKey, "data/homeserver.db": "SQLite format 3\x00"}, rule: "signing-key-missing-existing-db", fire: true},
		{name: "signing key missing, fresh sqlite", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db"}, files: map[string]string{"data/example.org.signing.key": deleteKey}, rule: "signing-key-missing-existing-db"},
		{name: "signing key missing, fresh", files: map[string]string{"data/example.org.signing.key": deleteKey}, rule: "signing-key-missing", fire: true},
		{name: "signing key missing on 1.60", files: map[string]string{"data/example.org.signing.key": deleteKey}, version: "1.60.0", rule: "signing-key-missing"},
		{name: "signing key required on 1.60", files: map[string]string{"data/example.org.signing.key": deleteKey}, version: "1.60.0", rule: "signing-key-required", fire: true},
		{name: "signing key present", rule: "signing-key-missing"},
		{name: "relative signing key resolves against workdir", set: map[string]string{"signing_key_path": "example.org.signing.key"}, rule: "signing-key-missing"},

		// Volumes.
		{name: "sqlite outside volume", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /synapse/homeserver.db"}, rule: "database-not-on-volume", fire: true},
		{name: "sqlite on volume", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: /data/homeserver.db"}, rule: "database-not-on-volume"},
		{name: "relative sqlite resolves against workdir (/data)", set: map[string]string{"database": "\n  name: sqlite3\n  args:\n    database: homeserver.db"}, rule: "database-not-on-volume"},
		{name: "media outside volume", set: map[string]string{"media_store_path": "/synapse/media"}, rule: "media-store-not-on-volume", fire: true},
		{name: "signing key outside volume", set: map[string]string{"signing_key_path": "/etc/key"}, files: map[string]string{"etc/key": goodKeyLine}, rule: "signing-key-not-on-volume", fire: true},

		// Listeners.
		{name: "listener port and path", set: map[string]string{"listeners": "\n  - port: 8008\n    path: /run/s.sock\n    type: http\n  - port: 8009\n    type: http"}, rule: "listener-port-or-path", fire: true},
		{name: "listener neither port nor path", set: map[string]string{"listeners": "\n  - type: metrics\n  - port: 8009\n    type: http"}, rule: "listener-port-or-path", fire: true},
		{name: "listener bad port", set: map[string]string{"listeners": "\n  - port: 70000\n    type: http"}, rule: "listener-port-invalid", fire: true},
		{name: "listener port string", set: map[string]string{"listeners": "\n  - port: \"8008\"\n    type: http"}, rule: "listener-port-invalid", fire: true},
		{name: "unix socket on 1.80", set: map[string]string{"listeners": "\n  - path: /run/s.sock\n    type: http\n  - port: 8008\n    type: http"}, version: "1.80.0", rule: "listener-unix-socket-unsupported", fire: true},
		{name: "unix socket on 1.81", set: map[string]string{"listeners": "\n  - path: /run/s.sock\n    type: http\n  - port: 8008\n    type: http"}, version: "1.81.0", rule: "listener-unix-socket-unsupported"},
		{name: "listener type unknown", set: map[string]string{"listeners": "\n  - port: 8008\n    type: http\n  - port: 9000\n    type: websocket"}, rule: "listener-type-invalid", fire: true},
		{name: "listener type missing", set: map[string]string{"listeners": "\n  - port: 8008\n    type: http\n  - port: 9000"}, rule: "listener-type-invalid", fire: true},
		{name: "replication listener", set: map[string]string{"listeners": "\n  - port: 8008\n    type: http\n  - port: 9092\n    type: replication"}, rule: "listener-type-replication", fire: true},
		{name: "replication listener on 1.66", set: map[string]string{"listeners": "\n  - port: 8008\n    type: http\n  - port: 9092\n    type: replication"}, version: "1.66.0", rule: "listener-type-replication"},
		{name: "unknown resource", set: map[string]string{"listeners": "\n  - port: 8008\n    type: http\n    resources:\n      - names: [client, gopher]"}, rule: "listener-resource-unknown", fire: true},
		{name: "webclient resource", set: map[string]string{"listeners": webListener}, rule: "listener-resource-webclient", fire: true},
		{name: "webclient resource on 1.52", set: map[string]string{"listeners": webListener}, version: "1.52.0", rule: "listener-resource-webclient"},
		{name: "webclient not unknown on 1.52", set: map[string]string{"listeners": webListener}, version: "1.52.0", rule: "listener-resource-unknown"},
		{name: "tls without certificate", set: map[string]string{"listeners": "\n  - port: 8448\n    type: http\n    tls: true"}, rule: "listener-tls-incomplete", fire: true},
		{name: "tls with certificate", set: map[string]string{"listeners": "\n  - port: 8448\n    type: http\n    tls: true", "tls_certificate_path": "/data/tls.crt", "tls_private_key_path": "/data/tls.key"}, rule: "listener-tls-incomplete"},
		{name: "no listeners", set: map[string]string{"listeners": deleteKey}, rule: "no-http-listener", fire: true},
		{name: "only metrics listener", set: map[string]string{"listeners": "\n  - port: 9000\n    type: metrics"}, rule: "no-http-listener", fire: true},
		{name: "only unix http listener", set: map[string]string{"listeners": "\n  - path: /run/s.sock\n    type: http"}, rule: "no-http-listener", fire: true},
		{name: "http listener", rule: "no-http-listener"},

		// Logging.
		{name: "log_file", set: map[string]string{"log_file": "/data/homeserver.log"}, rule: "log-file-removed", fire: true},
		{name: "log_file on 1.2", set: map[string]string{"log_file": "/data/homeserver.log"}, version: "1.2.0", rule: "log-file-removed"},
		{name: "log config missing", set: map[string]string{"log_config": "/data/nope.log.config"}, rule: "log-config-missing", fire: true},
		{name: "log config not yaml", files: map[string]string{"data/log.config": "version: [1\n"}, rule: "log-config-invalid", fire: true},
		{name: "log config without version", files: map[string]string{"data/log.config": "handlers: {}\n"}, rule: "log-config-invalid", fire: true},
		{name: "log config structured", files: map[string]string{"data/log.config": "version: 1\nstructured: true\n"}, rule: "log-config-structured", fire: true},
		{name: "log config structured on 1.53", files: map[string]string{"data/log.config": "version: 1\nstructured: true\n"}, version: "1.53.0", rule: "log-config-structured"},
		{name: "log file in missing dir", files: map[string]string{"data/log.config": "version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: /synapse/homeserver.log\n"}, rule: "log-handler-unwritable", fire: true},
		{name: "log file in existing dir", files: map[string]string{"data/log.config": "version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: /data/logs/homeserver.log\n", "data/logs/.keep": ""}, rule: "log-handler-unwritable"},
		{name: "relative log file resolves against workdir", files: map[string]string{"data/log.config": "version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: logs/homeserver.log\n", "data/logs/.keep": ""}, rule: "log-handler-unwritable"},

		// Removed, misplaced and deprecated keys.
		{name: "acme", set: map[string]string{"acme": "\n  enabled: false"}, rule: "acme-removed", fire: true},
		{name: "acme on 1.36", set: map[string]string{"acme": "\n  enabled: false"}, version: "1.36.0", rule: "acme-removed"},
		{name: "uploads_path", set: map[string]string{"uploads_path": "/data/uploads"}, rule: "uploads-path-removed", fire: true},
		{name: "uploads_path on 1.28", set: map[string]string{"uploads_path": "/data/uploads"}, version: "1.28.0", rule: "uploads-path-removed"},
		{name: "trusted_third_party_id_servers", set: map[string]string{"trusted_third_party_id_servers": "[matrix.org]"}, rule: "trusted-third-party-id-servers-removed", fire: true},
		{name: "trusted_third_party_id_servers on 1.47", set: map[string]string{"trusted_third_party_id_servers": "[matrix.org]"}, version: "1.47.0", rule: "trusted-third-party-id-servers-removed"},
		{name: "top-level search_all_users", set: map[string]string{"search_all_users": "true"}, rule: "search-all-users-misplaced", fire: true},
		{name: "search_all_users under user_directory", set: map[string]string{"user_directory": "\n  search_all_users: true"}, rule: "search-all-users-misplaced"},
		{name: "federation_ip_range_blacklist", set: map[string]string{"federation_ip_range_blacklist": "['10.0.0.0/8']"}, rule: "federation-ip-range-blacklist-deprecated", fire: true},
		{name: "federation_ip_range_blacklist on 1.24", set: map[string]string{"federation_ip_range_blacklist": "['10.0.0.0/8']"}, version: "1.24.0", rule: "federation-ip-range-blacklist-deprecated"},
		{name: "ip_range_blacklist", set: map[string]string{"ip_range_blacklist": "['10.0.0.0/8']"}, rule: "federation-ip-range-blacklist-deprecated"},
		{name: "ip_range_blocklist", set: map[string]string{"ip_range_blocklist": "['10.0.0.0/8']"}, rule: "ip-range-blocklist-not-a-key", fire: true},

		// Key servers.
		{name: "trusted_key_servers unset", set: map[string]string{"trusted_key_servers": deleteKey}, rule: "trusted-key-servers-unset", fire: true},
		{name: "matrix.org without suppression", set: map[string]string{"suppress_key_server_warning": deleteKey}, rule: "trusted-key-servers-matrix-org", fire: true},
		{name: "matrix.org with suppression", rule: "trusted-key-servers-matrix-org"},
		{name: "other key server", set: map[string]string{"suppress_key_server_warning": deleteKey, "trusted_key_servers": "\n  - server_name: keys.example.org"}, rule: "trusted-key-servers-matrix-org"},

		// Formats.
		{name: "duration ms", set: map[string]string{"redaction_retention_period": "500ms"}, rule: "duration-invalid", fire: true},
		{name: "duration float", set: map[string]string{"user_ips_max_age": "1.5"}, rule: "duration-invalid", fire: true},
		{name: "duration days", set: map[string]string{"redaction_retention_period": "7d"}, rule: "duration-invalid"},
		{name: "duration bare number", set: map[string]string{"user_ips_max_age": "86400000"}, rule: "duration-invalid"},
		{name: "duration null", set: map[string]string{"redaction_retention_period": "null"}, rule: "duration-invalid"},
		{name: "nested duration", set: map[string]string{"retention": "\n  purge_jobs:\n    - interval: 12hours"}, rule: "duration-invalid", fire: true},
		{name: "nested duration ok", set: map[string]string{"retention": "\n  purge_jobs:\n    - interval: 12h"}, rule: "duration-invalid"},
		{name: "size MB", set: map[string]string{"max_upload_size": "50MB"}, rule: "size-invalid", fire: true},
		{name: "size lower-case k", set: map[string]string{"max_upload_size": "50k"}, rule: "size-invalid", fire: true},
		{name: "size M", set: map[string]string{"max_upload_size": "50M"}, rule: "size-invalid"},
		{name: "size bytes", set: map[string]string{"max_upload_size": "1048576"}, rule: "size-invalid"},
		{name: "public_baseurl no scheme", set: map[string]string{"public_baseurl": "matrix.example.org"}, rule: "public-baseurl-invalid", fire: true},
		{name: "public_baseurl query", set: map[string]string{"public_baseurl": "https://matrix.example.org/?a=b"}, rule: "public-baseurl-invalid", fire: true},
		{name: "public_baseurl fragment", set: map[string]string{"public_baseurl": "'https://matrix.example.org/#x'"}, rule: "public-baseurl-invalid", fire: true},
		{name: "public_baseurl ok", set: map[string]string{"public_baseurl": "https://matrix.example.org/"}, rule: "public-baseurl-invalid"},

		// Workers.
		{name: "worker_replication_host in a worker", set: map[string]string{"worker_app": "synapse.app.generic_worker", "worker_name": "w1", "worker_replication_host": "main", "redis": "\n  enabled: true", "instance_map": "\n  main: {host: main, port: 9093}"}, rule: "worker-replication-legacy", fire: true},
		{name: "worker_replication_host in the main process", set: map[string]string{"worker_replication_host": "main"}, rule: "worker-replication-legacy"},
		{name: "worker_replication_host ignored by the main process", set: map[string]string{"worker_replication_host": "main"}, rule: "worker-replication-ignored", fire: true},
		{name: "worker_replication_host ignored on 1.85", set: map[string]string{"worker_replication_host": "main"}, version: "1.85.0", rule: "worker-replication-ignored"},
		{name: "no workers for a stale key", set: map[string]string{"worker_replication_host": "main"}, rule: "workers-need-redis"},
		{name: "worker_replication_host on 1.85", set: map[string]string{"worker_app": "synapse.app.generic_worker", "worker_replication_host": "main", "redis": "\n  enabled: true", "instance_map": "\n  main: {host: main, port: 9093}"}, version: "1.85.0", rule: "worker-replication-legacy"},
		{name: "workers without redis", set: map[string]string{"stream_writers": "\n  events: worker1", "instance_map": "\n  main: {host: main, port: 9093}\n  worker1: {host: w1, port: 9094}"}, rule: "workers-need-redis", fire: true},
		{name: "workers with redis", set: map[string]string{"stream_writers": "\n  events: worker1", "redis": "\n  enabled: true", "instance_map": "\n  main: {host: main, port: 9093}\n  worker1: {host: w1, port: 9094}"}, rule: "workers-need-redis"},
		{name: "workers without instance_map.main", set: map[string]string{"stream_writers": "\n  events: worker1", "redis": "\n  enabled: true"}, rule: "workers-need-instance-map-main", fire: true},
		{name: "workers without instance_map.main on 1.83", set: map[string]string{"stream_writers": "\n  events: worker1", "redis": "\n  enabled: true"}, version: "1.83.0", rule: "workers-need-instance-map-main"},
		{name: "no workers", rule: "workers-need-instance-map-main"},

		// Files and templates.
		{name: "duplicate key", set: map[string]string{"report_stats": "false\nreport_stats: true"}, rule: "duplicate-key", fire: true},
		{name: "unset variable", set: map[string]string{"server_name": `"${NAME}"`}, rule: "template-unset-variable", fire: true},
		{name: "set variable", set: map[string]string{"server_name": `"${NAME}"`}, env: MapEnv{"NAME": "example.org"}, rule: "template-unset-variable"},
		{name: "bad template", set: map[string]string{"server_name": `"${NAME"`}, rule: "template-syntax", fire: true},
		{name: "$$ in a literal secret", set: map[string]string{"form_secret": `"` + goodSecret1 + `$$x"`}, rule: "template-dollar-escape", fire: true},
		{name: "$$ from the environment", set: map[string]string{"form_secret": `"${FORM}"`}, env: MapEnv{"FORM": goodSecret1 + "$$"}, rule: "template-dollar-escape"},
		{name: "unreadable _FILE", set: map[string]string{"form_secret": `"${FORM}"`}, env: MapEnv{"FORM_FILE": "/nonexistent/secret"}, rule: "template-file-unreadable", fire: true},
	}
}

func TestRules(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range ruleCases() {
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			text := buildConfig(tc.set)
			files := tc.files
			fs := checkText(t, text, files, tc.env, tc.version)
			if got := hasRule(fs, tc.rule); got != tc.fire {
				t.Errorf("rule %s fired=%v, want %v\nconfig:\n%s\nfindings:\n%s", tc.rule, got, tc.fire, text, joinFindings(fs))
			}
			for _, f := range fs {
				if f.Rule == tc.rule && (f.Line < 1 || f.Col < 1 || f.File == "") {
					t.Errorf("finding without position: %+v", f)
				}
			}
		})
		if tc.fire {
			covered[tc.rule] = true
		}
	}
	for _, r := range Rules() {
		if !covered[r.ID] && r.ID != ruleConfigUnreadable && r.ID != ruleYAMLSyntax && r.ID != ruleYAMLNotMapping {
			t.Errorf("rule %s has no firing test case", r.ID)
		}
	}
}

func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		seen[r.ID] = true
		if r.Severity != SeverityError && r.Severity != SeverityWarning {
			t.Errorf("rule %s: bad severity %q", r.ID, r.Severity)
		}
		for _, v := range []string{r.Since, r.Until} {
			if v != "" {
				if _, err := ParseVersion(v); err != nil {
					t.Errorf("rule %s: %v", r.ID, err)
				}
			}
		}
		for _, c := range r.ID {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Errorf("rule id %s is not kebab-case", r.ID)
				break
			}
		}
	}
}

func TestVolumeRulesTmpfs(t *testing.T) {
	text := buildConfig(map[string]string{"media_store_path": "/data/tmp/media"})
	root := testRoot(t, nil)
	cfgPath := root + "/data/homeserver.yaml"
	writeFile(t, cfgPath, text)
	cfg, err := Load([]string{cfgPath}, LoadOptions{WorkDir: "/data"})
	if err != nil {
		t.Fatal(err)
	}
	mounts := append(containerMounts(), Mount{MountPoint: "/data/tmp", FSType: "tmpfs"})
	fs := cfg.Validate(ValidateOptions{Root: root, Mounts: mounts})
	if !hasRule(fs, "media-store-not-on-volume") {
		t.Fatalf("media on tmpfs should warn:\n%s", joinFindings(fs))
	}
	// No mount table at all: the volume rules stay silent rather than guess.
	fs = cfg.Validate(ValidateOptions{Root: root, MountinfoPath: root + "/no-such-mountinfo"})
	if hasRule(fs, "media-store-not-on-volume") {
		t.Fatalf("without a mount table no volume finding is expected:\n%s", joinFindings(fs))
	}
}

func TestSymlinkedVolume(t *testing.T) {
	dir := t.TempDir()
	vol := dir + "/volume"
	writeFile(t, vol+"/.keep", "")
	link := dir + "/data"
	if err := os.Symlink(vol, link); err != nil {
		t.Fatal(err)
	}
	mounts := []Mount{{MountPoint: "/", FSType: "overlay"}, {MountPoint: vol, FSType: "ext4"}}
	if ok, _ := onVolume(mounts, resolveExisting(link+"/media/not-yet")); !ok {
		t.Error("a path through a symlink into a volume is on the volume")
	}
	if ok, _ := onVolume(mounts, resolveExisting(dir+"/elsewhere/x")); ok {
		t.Error("a path outside the volume is not on it")
	}
}
