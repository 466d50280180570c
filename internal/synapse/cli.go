package synapse

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes (sysexits) used by the subcommands.
const (
	ExitOK          = 0
	ExitFindings    = 1  // check found errors (or warnings with --strict)
	ExitUsage       = 64 // bad flags or arguments
	ExitInternal    = 70 // a bug or an unexpected system failure
	ExitCantCreate  = 73 // init would overwrite an existing file
	ExitIOError     = 74 // init could not write
	DefaultConfPath = "/data/homeserver.yaml"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// RunCheck implements `entrypoint check [flags] [PATH...]`: it validates the configuration offline
// and prints one line per finding ("file:line:col: severity rule-id: message") or, with
// --format json, an array of findings. It returns 0 when clean or only warnings, 1 on errors (or
// on warnings with --strict), 64 on usage errors. The default PATH is $SYNAPSE_CONFIG_PATH or
// /data/homeserver.yaml. Secrets are never printed.
func RunCheck(args []string, stdout, stderr io.Writer, env Env) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "output format: text or json")
	strict := fs.Bool("strict", false, "fail on warnings too")
	workDir := fs.String("workdir", "", "directory Synapse runs in; relative paths resolve against it (default: current directory)")
	root := fs.String("root", "", "look up absolute paths from the config below this directory (check a repo before it is mounted)")
	version := fs.String("synapse-version", "", "Synapse version to check for (default: $SYNAPSE_VERSION, else the installed package, else newest)")
	mountinfo := fs.String("mountinfo", DefaultMountinfoPath, "mount table used to tell volumes from the container's own filesystem")
	listRules := fs.Bool("rules", false, "list every rule (id, severity, Synapse versions, summary) and exit")
	var sitePackages stringList
	fs.Var(&sitePackages, "site-packages", "python site-packages directory to find Synapse's version in (repeatable; globs allowed)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: entrypoint check [flags] [PATH...]\n\n"+
			"Validate a Synapse configuration without starting Synapse. PATH is a config file or a\n"+
			"directory of *.yaml files (merged like several -c options); default %s.\n"+
			"Exit status: 0 clean or warnings only, 1 errors (or warnings with -strict), 64 usage.\n\nFlags:\n", DefaultConfPath)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *listRules {
		for _, r := range Rules() {
			fmt.Fprintf(stdout, "%-42s %-7s %-13s %s\n", r.ID, r.Severity, versionRange(r), r.Summary)
		}
		return ExitOK
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "check: --format %q: want text or json\n", *format)
		return ExitUsage
	}
	paths := fs.Args()
	if len(paths) == 0 {
		p, ok := lookupEnv(env, "SYNAPSE_CONFIG_PATH")
		if !ok || p == "" {
			p = DefaultConfPath
		}
		paths = []string{p}
	}
	var ver Version
	if *version != "" {
		v, err := ParseVersion(*version)
		if err != nil {
			fmt.Fprintf(stderr, "check: --synapse-version: %v\n", err)
			return ExitUsage
		}
		ver = v
	} else {
		roots := []string(sitePackages)
		if len(roots) == 0 {
			roots = DefaultSitePackages()
		}
		v, _, err := DetectVersion(env, roots)
		if err != nil {
			fmt.Fprintf(stderr, "check: %v\n", err)
			return ExitUsage
		}
		ver = v
	}
	cfg, err := Load(paths, LoadOptions{Env: env, WorkDir: *workDir})
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return ExitInternal
	}
	findings := cfg.Validate(ValidateOptions{Version: ver, Root: *root, MountinfoPath: *mountinfo})
	if *format == "json" {
		data, err := findings.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "check: encode findings: %v\n", err)
			return ExitInternal
		}
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		for _, f := range findings {
			fmt.Fprintln(stdout, f.String())
		}
		nErr, nWarn := findings.Count()
		fmt.Fprintf(stderr, "check: %d error(s), %d warning(s) for Synapse %s in %s\n", nErr, nWarn, ver, strings.Join(cfg.Files(), ", "))
	}
	if findings.HasErrors(*strict) {
		return ExitFindings
	}
	return ExitOK
}

// RunInit implements `entrypoint init --server-name NAME [flags] [DIR]`: it writes a fresh config
// (homeserver.yaml, log config, signing key) into DIR (default "."), never overwriting a file.
// --server-name defaults to $SYNAPSE_SERVER_NAME.
func RunInit(args []string, stdout, stderr io.Writer, env Env) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defName, _ := lookupEnv(env, "SYNAPSE_SERVER_NAME")
	serverName := fs.String("server-name", defName, "Matrix server name, host[:port] (default $SYNAPSE_SERVER_NAME)")
	database := fs.String("database", "sqlite", "database: sqlite or postgres (credentials from ${POSTGRES_USER}, ${POSTGRES_PASSWORD}, ${POSTGRES_DB}, ${POSTGRES_HOST})")
	reportStats := fs.Bool("report-stats", false, "send anonymous usage statistics to matrix.org")
	dataDir := fs.String("data-dir", "/data", "directory Synapse keeps its state in at run time (sqlite database, media)")
	configDir := fs.String("config-dir", "", "directory the generated files will be in at run time (default: -data-dir)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: entrypoint init --server-name NAME [flags] [DIR]\n\n"+
			"Write a fresh Synapse configuration into DIR (default .): homeserver.yaml with new secrets,\n"+
			"NAME.log.config (logs to stdout) and NAME.signing.key. Existing files are never overwritten.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "init: want at most one DIR, got %d arguments\n", fs.NArg())
		fs.Usage()
		return ExitUsage
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if *serverName == "" {
		fmt.Fprintln(stderr, "init: --server-name is required")
		fs.Usage()
		return ExitUsage
	}
	if *database != "sqlite" && *database != "postgres" {
		fmt.Fprintf(stderr, "init: --database %q: want sqlite or postgres\n", *database)
		return ExitUsage
	}
	if !validServerName(*serverName) {
		fmt.Fprintf(stderr, "init: --server-name %q is not host[:port]\n", *serverName)
		return ExitUsage
	}
	files, err := GenerateInit(InitOptions{ServerName: *serverName, Database: *database, ReportStats: *reportStats, DataDir: *dataDir, ConfigDir: *configDir})
	if err != nil {
		fmt.Fprintf(stderr, "init: %v\n", err)
		return ExitUsage
	}
	if err := WriteInit(dir, files); err != nil {
		fmt.Fprintf(stderr, "init: %v\n", err)
		if IsExist(err) {
			return ExitCantCreate
		}
		if errors.Is(err, os.ErrPermission) {
			return ExitCantCreate
		}
		return ExitIOError
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s\n", joinDir(dir, f.Name))
	}
	if *database == "postgres" {
		fmt.Fprintln(stdout, "set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) in the container's environment")
	}
	return ExitOK
}

// joinDir joins for display without cleaning away a user's "./".
func joinDir(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// versionRange describes the Synapse releases a rule applies to, for --rules.
func versionRange(r Rule) string {
	switch {
	case r.Since == "" && r.Until == "":
		return "all"
	case r.Until == "":
		return ">=" + r.Since
	case r.Since == "":
		return "<" + r.Until
	}
	return r.Since + "-" + r.Until
}
