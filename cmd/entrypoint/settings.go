package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Settings is every environment variable the entrypoint reads, in one place. `entrypoint --help`
// prints this table, so the desc tags are the operator's documentation.
type Settings struct {
	LogLevel     string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat    string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, json otherwise)"`
	StopTimeout  time.Duration `envconfig:"STOP_TIMEOUT" default:"10s" desc:"command mode: time a child gets after SIGTERM/SIGINT before SIGKILL"`
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT" default:"5s" desc:"after the main process ends, time leftover processes get after SIGTERM before SIGKILL"`
	StatusAddr   string        `envconfig:"STATUS_ADDR" default:"127.0.0.1:8080" desc:"address of the status endpoint (/healthz, /readyz, /metrics); empty disables it"`

	// Synapse.
	ServerName     string        `envconfig:"SYNAPSE_SERVER_NAME" desc:"server name for the embedded default config (used when there is no CONFIG_REPO and no config in the data dir); the tutorial's HOST also works"`
	Host           string        `envconfig:"HOST" desc:"the tutorial's name for SYNAPSE_SERVER_NAME"`
	ReportStats    bool          `envconfig:"SYNAPSE_REPORT_STATS" default:"false" desc:"report_stats in the embedded default config"`
	HTTPPort       int           `envconfig:"SYNAPSE_HTTP_PORT" default:"8008" desc:"listener port of the embedded default config"`
	DataDir        string        `envconfig:"SYNAPSE_DATA_DIR" default:"/data" desc:"Synapse's data directory and working directory; the config repository is cloned here"`
	ConfigPath     string        `envconfig:"SYNAPSE_CONFIG_PATH" default:"/data/homeserver.yaml" desc:"the config Synapse runs with when no -c is given"`
	RenderedConfig string        `envconfig:"SYNAPSE_RENDERED_CONFIG" default:"/run/synapse/homeserver.yaml" desc:"where the templated, validated config is written (mode 0600, outside the repository)"`
	Command        string        `envconfig:"SYNAPSE_COMMAND" default:"python3 -m synapse.app.homeserver" desc:"how to start Synapse (interpreter and module), for other installs"`
	Version        string        `envconfig:"SYNAPSE_VERSION" desc:"Synapse version the config is validated for; detected from the installed package when empty"`
	UID            int           `envconfig:"UID" default:"991" desc:"user Synapse runs as when the entrypoint runs as root"`
	GID            int           `envconfig:"GID" default:"991" desc:"group Synapse runs as when the entrypoint runs as root"`
	Restart        string        `envconfig:"SYNAPSE_RESTART" default:"on-failure" desc:"always, on-failure or never: when a crashed Synapse is restarted (1s doubling to 5min)"`
	MaxRestarts    int           `envconfig:"SYNAPSE_MAX_RESTARTS" default:"0" desc:"give up after this many restarts; 0 means never give up (a crash-looping container loses its Akash lease)"`
	SynapseStop    time.Duration `envconfig:"SYNAPSE_STOP_TIMEOUT" default:"20s" desc:"stop budget: wait for READY, SIGTERM, then SIGKILL when it is spent"`
	StartTimeout   time.Duration `envconfig:"SYNAPSE_START_TIMEOUT" default:"10m" desc:"Synapse not ready after this long is restarted (migrations can take minutes)"`
	ProbeInterval  time.Duration `envconfig:"SYNAPSE_PROBE_INTERVAL" default:"10s" desc:"interval of GET /health probes"`
	ProbeTimeout   time.Duration `envconfig:"SYNAPSE_PROBE_TIMEOUT" default:"5s" desc:"timeout of one probe"`
	ProbeFailures  int           `envconfig:"SYNAPSE_PROBE_FAILURES" default:"3" desc:"failed probes in a row after READY that restart Synapse"`
	StrictCheck    bool          `envconfig:"SYNAPSE_STRICT_CHECK" default:"false" desc:"refuse to start on validation warnings too"`

	// Config repository.
	ConfigRepo          string        `envconfig:"CONFIG_REPO" desc:"keybase://team/<team>/<repo>, https://..., ssh://..., git@host:path, or a local path"`
	ConfigRef           string        `envconfig:"CONFIG_REF" desc:"branch, tag or commit id; default the remote's HEAD"`
	ConfigUsername      string        `envconfig:"CONFIG_REPO_USERNAME" desc:"https user name (a token alone also works as CONFIG_REPO_PASSWORD)"`
	ConfigPassword      string        `envconfig:"CONFIG_REPO_PASSWORD" desc:"https password or token (secret; prefer CONFIG_REPO_PASSWORD_FILE)"`
	ConfigPasswordFile  string        `envconfig:"CONFIG_REPO_PASSWORD_FILE" desc:"file holding CONFIG_REPO_PASSWORD"`
	ConfigSSHKeyFile    string        `envconfig:"CONFIG_REPO_SSH_KEY_FILE" desc:"ssh private key for ssh:// and git@host:path"`
	ConfigKnownHosts    string        `envconfig:"CONFIG_REPO_KNOWN_HOSTS_FILE" desc:"known_hosts for ssh (required: host keys are always checked)"`
	ConfigSyncInterval  time.Duration `envconfig:"CONFIG_SYNC_INTERVAL" default:"0" desc:"poll the repository this often and apply new commits (SIGHUP or restart); 0 disables"`
	ConfigMaxBytes      int64         `envconfig:"CONFIG_MAX_BYTES" default:"104857600" desc:"largest repository accepted"`
	ConfigDiscardLocal  bool          `envconfig:"CONFIG_DISCARD_LOCAL_CHANGES" default:"false" desc:"allow updates to overwrite files edited in the data dir"`
	ConfigNetworkTimout time.Duration `envconfig:"CONFIG_NETWORK_TIMEOUT" default:"2m" desc:"timeout of one network attempt"`

	// Keybase.
	KeybaseUsername     string        `envconfig:"KEYBASE_USERNAME" desc:"Keybase user to log in as with a paper key; Keybase starts only when this and a paper key are set"`
	KeybasePaperkey     string        `envconfig:"KEYBASE_PAPERKEY" desc:"the paper key (secret; prefer KEYBASE_PAPERKEY_FILE); only the oneshot login ever sees it"`
	KeybasePaperkeyFile string        `envconfig:"KEYBASE_PAPERKEY_FILE" desc:"file holding the paper key"`
	KeybaseAllowRoot    bool          `envconfig:"KEYBASE_ALLOW_ROOT" default:"false" desc:"run the Keybase daemons as root when no unprivileged keybase user exists"`
	KeybaseNotify       string        `envconfig:"KEYBASE_NOTIFY" desc:"team[#channel] to send start, ready, config and crash notifications to"`
	KeybaseHome         string        `envconfig:"KEYBASE_HOME" desc:"home directory of the Keybase daemons; default the keybase user's home"`
	KeybaseReadyTimeout time.Duration `envconfig:"KEYBASE_READY_TIMEOUT" default:"2m" desc:"how long to wait for the Keybase service and KBFS"`
}

// loadSettings reads Settings from the environment, resolves the _FILE variants and checks what
// can be checked before anything starts. A malformed value is a configuration error.
func loadSettings() (Settings, error) {
	var s Settings
	if err := envconfig.Process("", &s); err != nil {
		return s, fmt.Errorf("environment: %w", err)
	}
	if s.ServerName == "" {
		s.ServerName = s.Host
	}
	var err error
	if s.ConfigPassword, err = fromFile("CONFIG_REPO_PASSWORD", s.ConfigPassword, s.ConfigPasswordFile); err != nil {
		return s, err
	}
	if s.KeybasePaperkey, err = fromFile("KEYBASE_PAPERKEY", s.KeybasePaperkey, s.KeybasePaperkeyFile); err != nil {
		return s, err
	}
	return s, nil
}

// fromFile returns value, or the trimmed content of file when value is empty (Docker and
// Kubernetes secrets). Setting both is ambiguous and refused.
func fromFile(name, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("environment: both %s and %s_FILE are set; keep one", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("environment: %s_FILE: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", errors.New("environment: " + name + "_FILE " + file + " is empty")
	}
	return v, nil
}

// keybaseEnabled: Keybase starts only when a user and a paper key are configured.
func (s Settings) keybaseEnabled() bool { return s.KeybaseUsername != "" && s.KeybasePaperkey != "" }

// printEnvUsage writes envconfig's table of variables, defaults and descriptions.
func printEnvUsage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 1, 0, 4, ' ', 0)
	if err := envconfig.Usagef("", &Settings{}, tw, envconfig.DefaultTableFormat); err != nil {
		return err
	}
	return tw.Flush()
}
