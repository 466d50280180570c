package configrepo

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// sourceKind says which transport serves a URL.
type sourceKind int

const (
	srcLocal   sourceKind = iota + 1 // a path or file:// URL, served in-process
	srcKeybase                       // keybase://, copied out of KBFS then served in-process
	srcHTTP                          // http:// or https:// through go-git's smart-HTTP client
	srcSSH                           // ssh:// or scp-like through go-git's ssh client
)

// source is a parsed Config.URL: everything needed to open a session, plus the two spellings of
// the URL that may leave this package (redacted for errors and logs, identity for the marker).
type source struct {
	kind     sourceKind
	redacted string // safe to log: credentials replaced by ***
	identity string // the URL without credentials; identifies "our" clone in the marker

	ep        *transport.Endpoint // http and ssh
	localPath string              // local
	kbKind    string              // keybase: team, private or public
	kbTLF     string
	kbRepo    string // lower-cased, ".git" dropped, as KBFS stores it

	httpUser, httpPass string
	httpClient         *http.Client
}

// parseSource classifies cfg.URL and checks that the credentials each scheme needs are present,
// so configuration mistakes are reported before any network step.
func parseSource(cfg Config) (*source, error) {
	raw := strings.TrimSpace(cfg.URL)
	if raw == "" {
		return nil, configErr("parse", "", "CONFIG_REPO URL is empty")
	}
	switch {
	case strings.HasPrefix(raw, "keybase://"):
		return parseKeybase(raw, cfg)
	case strings.HasPrefix(raw, "file://"):
		u, err := url.Parse(raw)
		if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return nil, configErr("parse", raw, "malformed file URL (want file:///absolute/path)")
		}
		return &source{kind: srcLocal, redacted: raw, identity: "file://" + filepath.Clean(u.Path), localPath: u.Path}, nil
	case filepath.IsAbs(raw) || strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../"):
		abs, err := filepath.Abs(raw)
		if err != nil {
			return nil, configErr("parse", raw, "%v", err)
		}
		return &source{kind: srcLocal, redacted: raw, identity: "file://" + abs, localPath: abs}, nil
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, configErr("parse", Redact(raw), "malformed URL: %v", redactErr(err, raw))
	}
	if (ep.Protocol == "http" || ep.Protocol == "https" || ep.Protocol == "ssh") &&
		(ep.Host == "" || ep.Port < 0 || ep.Port > 65535) {
		return nil, configErr("parse", Redact(raw), "malformed URL: bad host or port")
	}
	switch ep.Protocol {
	case "http", "https":
		return parseHTTP(ep, cfg)
	case "ssh":
		return parseSSH(ep, cfg)
	case "file":
		abs, err := filepath.Abs(ep.Path)
		if err != nil {
			return nil, configErr("parse", raw, "%v", err)
		}
		return &source{kind: srcLocal, redacted: raw, identity: "file://" + abs, localPath: abs}, nil
	}
	return nil, configErr("parse", Redact(raw), "unsupported scheme %q (want keybase, https, http, ssh, file or a path)", ep.Protocol)
}

// parseHTTP takes credentials from the Config, falling back to the URL's userinfo, and strips the
// userinfo from the endpoint so it is sent only as the Authorization header.
func parseHTTP(ep *transport.Endpoint, cfg Config) (*source, error) {
	user, pass := cfg.Username, cfg.Password
	if user == "" && pass == "" {
		user, pass = ep.User, ep.Password
	}
	if user == "" && pass != "" {
		user = "git"
	}
	clean := *ep
	clean.User, clean.Password = "", ""
	s := &source{kind: srcHTTP, ep: &clean, httpUser: user, httpPass: pass, identity: clean.String()}
	s.redacted = s.identity
	if user != "" || pass != "" {
		s.redacted = strings.Replace(s.identity, "://", "://***@", 1)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(cfg.CABundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, configErr("parse", s.redacted, "CA bundle contains no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s.httpClient = &http.Client{Transport: tr}
	return s, nil
}

// parseSSH insists on a key and a known_hosts file: a container has no agent and no one to
// answer "are you sure you want to continue connecting", so host keys are checked strictly.
func parseSSH(ep *transport.Endpoint, cfg Config) (*source, error) {
	if ep.User == "" {
		ep.User = "git"
	}
	ep.Password = ""
	s := &source{kind: srcSSH, ep: ep}
	s.identity = ep.String()
	s.redacted = s.identity
	if cfg.KnownHostsFile == "" {
		return nil, configErr("parse", s.redacted, "ssh needs a known_hosts file (CONFIG_REPO_KNOWN_HOSTS_FILE): host keys are checked strictly")
	}
	if cfg.SSHKeyFile == "" {
		return nil, configErr("parse", s.redacted, "ssh needs a private key file (CONFIG_REPO_SSH_KEY_FILE)")
	}
	return s, nil
}

// parseKeybase splits keybase://<kind>/<tlf>/<repo> and normalises the repo name the way KBFS
// stores it (lower case, no ".git").
func parseKeybase(raw string, cfg Config) (*source, error) {
	rest := strings.TrimPrefix(raw, "keybase://")
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return nil, configErr("parse", raw, "malformed keybase URL (want keybase://team|private|public/<tlf>/<repo>)")
	}
	switch parts[0] {
	case "team", "private", "public":
	default:
		return nil, configErr("parse", raw, "keybase URL kind %q is not team, private or public", parts[0])
	}
	for _, p := range parts[1:] {
		if p == "." || p == ".." || strings.ContainsAny(p, "\\\x00") {
			return nil, configErr("parse", raw, "malformed keybase URL component %q", p)
		}
	}
	if cfg.Copier == nil {
		return nil, configErr("parse", raw, "keybase URLs need a KBFS copier (is Keybase configured?)")
	}
	repo := strings.TrimSuffix(strings.ToLower(parts[2]), ".git")
	return &source{
		kind: srcKeybase, redacted: raw, identity: raw,
		kbKind: parts[0], kbTLF: parts[1], kbRepo: repo,
	}, nil
}

// Redact hides the credentials in a repository URL (https://user:token@host/... becomes
// https://***@host/...), even one that does not parse, so a token never reaches a log or a
// status page.
func Redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	at := strings.LastIndex(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && at > slash) {
		return raw
	}
	return raw[:i+3] + "***@" + rest[at+1:]
}

// redactErr replaces the raw URL inside err's text by its redacted form.
func redactErr(err error, raw string) error {
	red := Redact(raw)
	if red == raw {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), raw, red))
}
