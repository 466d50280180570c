package synapse

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ValidateOptions configures Validate. The zero value validates for the newest Synapse against
// the real filesystem and /proc/self/mountinfo.
type ValidateOptions struct {
	// Version is the Synapse version that will run; zero means newest.
	Version Version
	// Root is where the container's filesystem is seen from here: absolute paths in the config
	// (log config, signing key, database, secrets) are looked up below Root. Empty means "/". This
	// lets `check --root` validate a config repo before it is mounted at /data.
	Root string
	// Mounts is the mount table used to tell volumes from the container's own layer. Nil means
	// parse MountinfoPath.
	Mounts []Mount
	// MountinfoPath is read when Mounts is nil; empty means /proc/self/mountinfo. When it cannot
	// be read the volume rules are skipped (nothing reliable to say).
	MountinfoPath string
	// ReadFile, Stat and Writable reach the filesystem; nil means the os package and access(2).
	ReadFile func(string) ([]byte, error)
	Stat     func(string) (fs.FileInfo, error)
	Writable func(dir string) bool
}

// validator holds one Validate run's state.
type validator struct {
	c      *Config
	opts   ValidateOptions
	rules  map[string]Rule
	out    Findings
	mounts []Mount
	// mountsOK is false when no mount table could be read.
	mountsOK bool
}

// Validate checks the configuration against every rule in force for opts.Version and returns the
// load-time findings (unreadable files, YAML and template errors) together with the rule findings,
// sorted by file and position.
func (c *Config) Validate(opts ValidateOptions) Findings {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.Stat == nil {
		opts.Stat = os.Stat
	}
	if opts.Writable == nil {
		opts.Writable = func(dir string) bool { return unix.Access(dir, unix.W_OK) == nil }
	}
	v := &validator{c: c, opts: opts, rules: map[string]Rule{}}
	for _, r := range Rules() {
		v.rules[r.ID] = r
	}
	for _, f := range c.findings {
		if r, ok := v.rules[f.Rule]; !ok || r.applies(opts.Version) {
			v.out = append(v.out, f)
		}
	}
	if c.anyLoaded() {
		v.loadMounts()
		v.checkRequired()
		v.checkDatabase()
		v.checkRegistration()
		v.checkSecrets()
		v.checkSigningKey()
		v.checkVolumes()
		v.checkListeners()
		v.checkLogging()
		v.checkRemovedKeys()
		v.checkKeyServers()
		v.checkFormats()
		v.checkWorkers()
	}
	order := map[string]int{}
	for i, f := range c.files {
		if _, ok := order[f.path]; !ok {
			order[f.path] = i
		}
	}
	sortFindings(v.out, order)
	return v.out
}

// anyLoaded reports whether at least one file parsed to a mapping, so the rules have something to
// look at (an empty mapping still lacks server_name).
func (c *Config) anyLoaded() bool {
	for _, f := range c.files {
		if f.root != nil {
			return true
		}
	}
	return false
}

// report records a finding for rule id at r when the rule applies to the target version.
func (v *validator) report(id string, at ref, format string, args ...any) {
	v.reportSince(id, "", at, format, args...)
}

// reportSince is report with the finding's Since overridden, for rules whose version depends on
// which key triggered them (e.g. each *_path secret arrived in a different release).
func (v *validator) reportSince(id, since string, at ref, format string, args ...any) {
	r, ok := v.rules[id]
	if !ok {
		r = Rule{ID: id, Severity: SeverityError}
	}
	if !r.applies(v.opts.Version) || (at.n != nil && v.c.unresolved[at.n]) {
		return
	}
	if since == "" {
		since = r.Since
	}
	line, col := 1, 1
	if at.n != nil && at.n.Line > 0 {
		line, col = at.n.Line, at.n.Column
	}
	file := at.file
	if file == "" {
		file = v.c.mainFile()
	}
	v.out = append(v.out, Finding{File: file, Line: line, Col: col, Severity: r.Severity, Rule: id,
		Message: fmt.Sprintf(format, args...), Since: since})
}

// hostPath maps a path as Synapse will see it to where it can be inspected from here.
func (v *validator) hostPath(p string) string {
	if v.opts.Root == "" || v.opts.Root == "/" {
		return p
	}
	return filepath.Join(v.opts.Root, p)
}

// exists reports whether a Synapse-side path exists.
func (v *validator) exists(p string) bool {
	_, err := v.opts.Stat(v.hostPath(p))
	return err == nil
}

// versionAtLeast reports whether the target Synapse is at least s (true for "newest").
func (v *validator) versionAtLeast(s string) bool {
	return v.opts.Version.IsZero() || !v.opts.Version.Less(mustVersion(s))
}
