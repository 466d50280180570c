package synapse

import (
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// checkLogging: log_file is gone; the log config must be a Python logging dictConfig whose file
// handlers can open their files (Python opens them while configuring, so a bad path kills Synapse
// at start-up). Findings about the log config's content point into the log config file.
func (v *validator) checkLogging() {
	if v.c.Has("log_file") {
		v.report("log-file-removed", v.c.topKey("log_file"), "log_file was removed in Synapse 1.3: delete it and configure logging with log_config")
	}
	at := v.c.top("log_config")
	p := v.c.LogConfigPath()
	if p == "" {
		return
	}
	host := v.hostPath(p)
	data, err := v.opts.ReadFile(host)
	if err != nil {
		v.report("log-config-missing", at, "log config %s cannot be read (%v): create it (entrypoint init writes one that logs to stdout) or fix log_config", p, errReason(err))
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		f := yamlSyntaxFinding(host, err)
		v.report("log-config-invalid", ref{file: host, n: &yaml.Node{Line: f.Line, Column: 1}}, "log config is not valid YAML: %s", f.Message)
		return
	}
	root := ref{file: host, n: &doc}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root.n = deref(doc.Content[0])
	}
	if root.n.Kind != yaml.MappingNode {
		v.report("log-config-invalid", ref{file: host}, "log config must be a mapping for Python's logging.config.dictConfig (version: 1, handlers, root)")
		return
	}
	if ver, ok := root.get("version").integer(); !ok || ver != 1 {
		v.report("log-config-invalid", ref{file: host}, "log config needs version: 1 (Python's logging.config.dictConfig rejects it otherwise)")
	}
	if root.get("structured").truthy() {
		v.report("log-config-structured", root.keyNode("structured"), "structured: true logging was removed in Synapse 1.54: rewrite the log config as a standard dictConfig (see Synapse's structured logging docs)")
	}
	handlers := root.get("handlers")
	if !handlers.ok() || handlers.n.Kind != yaml.MappingNode {
		return
	}
	for i := 1; i < len(handlers.n.Content); i += 2 {
		h := ref{file: host, n: deref(handlers.n.Content[i])}
		fn := h.get("filename")
		name, ok := fn.str()
		if !ok {
			continue
		}
		target := v.c.resolve(name)
		dir := filepath.Dir(target)
		st, err := v.opts.Stat(v.hostPath(dir))
		switch {
		case err != nil || !st.IsDir():
			v.report("log-handler-unwritable", fn, "log handler %s writes to %s but directory %s does not exist: create it or log to the console (class: logging.StreamHandler)", handlers.n.Content[i-1].Value, target, dir)
		case !v.opts.Writable(v.hostPath(dir)) && !fileWritable(v, target):
			v.report("log-handler-unwritable", fn, "log handler %s writes to %s but directory %s is not writable: fix its permissions or log to the console", handlers.n.Content[i-1].Value, target, dir)
		}
	}
}

// fileWritable reports whether an existing file can be appended to even though its directory is
// read-only (rotation would still fail, but a plain FileHandler works).
func fileWritable(v *validator, p string) bool {
	if _, err := v.opts.Stat(v.hostPath(p)); err != nil {
		return false
	}
	f, err := os.OpenFile(v.hostPath(p), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
