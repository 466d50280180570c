package synapse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load rule ids: problems with the files themselves.
const (
	ruleConfigUnreadable = "config-unreadable"
	ruleYAMLSyntax       = "yaml-syntax"
	ruleYAMLNotMapping   = "yaml-not-mapping"
	ruleDuplicateKey     = "duplicate-key"
)

// LoadOptions configures Load.
type LoadOptions struct {
	// Env supplies ${VAR} values. Nil is an empty environment.
	Env Env
	// ReadFile reads config files and VAR_FILE secrets; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// ReadDir lists config directories; nil means os.ReadDir.
	ReadDir func(string) ([]fs.DirEntry, error)
	// WorkDir is the directory Synapse will run in. Synapse resolves relative paths
	// (media_store_path, the sqlite database, signing_key_path, log_config) against its working
	// directory, not the config directory. Empty means the current directory of this process.
	WorkDir string
}

// Config is a loaded, templated configuration: the per-file YAML trees (with positions) and the
// merged top-level view Synapse will see. Content problems never make Load fail; they are kept as
// findings and returned by Validate together with the rule findings.
type Config struct {
	files    []*configFile
	entries  []*entry
	index    map[string]*entry
	workDir  string
	findings Findings
	// templateErrors counts unresolved templates: such a config cannot be rendered.
	templateErrors int
	// unresolved are the scalars whose templates failed; rules stay silent about them because the
	// template finding already explains the problem and their value is meaningless.
	unresolved map[*yaml.Node]bool
	// raw keeps the text of templated scalars before expansion, for rules about the template itself.
	raw map[*yaml.Node]string
}

// configFile is one loaded file.
type configFile struct {
	path string
	root *yaml.Node // the top-level mapping; nil when the file did not load
}

// entry is one merged top-level key: where it came from and its (templated) value.
type entry struct {
	key   string
	file  string
	keyN  *yaml.Node
	value *yaml.Node
}

// Load reads the config files and directories in paths the way Synapse does with several -c
// options: a directory contributes its *.yaml files in sorted order, and the files' top-level
// mappings are merged shallowly, later files winning. Templates in scalar values are expanded from
// opts.Env. The returned error is only for unusable arguments; unreadable files, YAML syntax errors
// and template errors are findings, so one run reports every problem.
func Load(paths []string, opts LoadOptions) (*Config, error) {
	if len(paths) == 0 {
		return nil, errors.New("load config: no config path given")
	}
	readFile := opts.ReadFile
	if readFile == nil {
		readFile = os.ReadFile
	}
	readDir := opts.ReadDir
	if readDir == nil {
		readDir = os.ReadDir
	}
	workDir := opts.WorkDir
	if workDir == "" {
		if wd, err := os.Getwd(); err == nil {
			workDir = wd
		} else {
			workDir = "/"
		}
	}
	if abs, err := filepath.Abs(workDir); err == nil {
		workDir = abs
	}
	c := &Config{index: map[string]*entry{}, workDir: filepath.Clean(workDir), unresolved: map[*yaml.Node]bool{}, raw: map[*yaml.Node]string{}}
	exp := expander{env: opts.Env, readFile: readFile}
	files, empty := expandConfigPaths(paths, readDir)
	for _, dir := range empty {
		c.files = append(c.files, &configFile{path: dir})
		c.addFinding(dir, nil, ruleConfigUnreadable, "directory contains no *.yaml file: Synapse would start without this configuration")
	}
	for _, file := range files {
		cf := &configFile{path: file}
		c.files = append(c.files, cf)
		data, err := readFile(file)
		if err != nil {
			c.addFinding(file, nil, ruleConfigUnreadable, fmt.Sprintf("cannot read config file (%v): fix the path given to -c", errReason(err)))
			continue
		}
		root, f := parseYAMLMapping(file, data)
		if f != nil {
			c.findings = append(c.findings, *f)
			continue
		}
		cf.root = root
		c.expandNode(exp, file, root)
		c.merge(cf)
	}
	return c, nil
}

// expandConfigPaths turns -c arguments into files like Synapse's find_config_files: directories
// contribute their regular *.yaml files in sorted order; anything else is taken as a file.
// Directories without any *.yaml file are returned separately (empty) so they can be reported.
func expandConfigPaths(paths []string, readDir func(string) ([]fs.DirEntry, error)) (files, empty []string) {
	for _, p := range paths {
		entries, err := readDir(p)
		if err != nil {
			files = append(files, p)
			continue
		}
		before := len(files)
		for _, e := range entries { // os.ReadDir sorts by name, like Python's sorted()
			if !strings.HasSuffix(e.Name(), ".yaml") {
				continue
			}
			full := filepath.Join(p, e.Name())
			if st, err := os.Stat(full); err == nil && !st.Mode().IsRegular() {
				continue
			} else if err != nil && e.IsDir() {
				continue
			}
			files = append(files, full)
		}
		if len(files) == before {
			empty = append(empty, p)
		}
	}
	return files, empty
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// parseYAMLMapping parses exactly one YAML document whose root must be a mapping, as Synapse
// requires. The finding, when not nil, explains what is wrong and where.
func parseYAMLMapping(file string, data []byte) (root *yaml.Node, finding *Finding) {
	defer func() {
		if r := recover(); r != nil { // yaml.v3 has panicked on hostile input before
			root, finding = nil, &Finding{File: file, Line: 1, Col: 1, Severity: SeverityError, Rule: ruleYAMLSyntax,
				Message: fmt.Sprintf("invalid YAML: parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, &Finding{File: file, Line: 1, Col: 1, Severity: SeverityError, Rule: ruleYAMLNotMapping,
			Message: "file is empty: Synapse needs a mapping with at least server_name and report_stats"}
	}
	if err != nil {
		return nil, yamlSyntaxFinding(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Finding{File: file, Line: extra.Line, Col: extra.Column, Severity: SeverityError, Rule: ruleYAMLSyntax,
			Message: "more than one YAML document (---): Synapse reads exactly one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlSyntaxFinding(file, err)
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Finding{File: file, Line: max(root.Line, 1), Col: max(root.Column, 1), Severity: SeverityError, Rule: ruleYAMLNotMapping,
			Message: "top level is not a mapping of keys to values: Synapse ignores this file"}
	}
	return root, nil
}

// yamlSyntaxFinding turns a yaml.v3 parse error into a finding, recovering the line number from
// the message (yaml.v3 has no structured position on errors).
func yamlSyntaxFinding(file string, err error) *Finding {
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil && n > 0 {
			line = n
		}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &Finding{File: file, Line: line, Col: 1, Severity: SeverityError, Rule: ruleYAMLSyntax,
		Message: "invalid YAML: " + msg}
}

// expandNode substitutes templates in every scalar value below n (mapping keys are left alone).
// Substitution replaces a scalar's value only, so the document's structure cannot change.
func (c *Config) expandNode(exp expander, file string, n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, ch := range n.Content {
			c.expandNode(exp, file, ch)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := deref(n.Content[i]); k != nil && (k.Kind == yaml.MappingNode || k.Kind == yaml.SequenceNode) {
				c.addFinding(file, n.Content[i], ruleYAMLSyntax, "a mapping key is itself a mapping or list: Python cannot use it as a key (unhashable) and Synapse fails to load the file")
			}
			c.expandNode(exp, file, n.Content[i+1])
		}
	case yaml.ScalarNode:
		c.expandScalar(exp, file, n)
	}
}

// expandScalar expands one scalar and fixes its tag. A quoted or block scalar stays a string; a
// plain one becomes an int, float or bool when the substituted text is one (so `port: ${PORT}`
// works), and any other string is forced to double quotes so Python's YAML 1.1 parser cannot read
// it as something else ("yes", "1:20", "~").
func (c *Config) expandScalar(exp expander, file string, n *yaml.Node) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	c.raw[n] = n.Value
	val, probs := exp.expand(n.Value, 0)
	for _, p := range probs {
		if p.rule == ruleTemplateUnset || p.rule == ruleTemplateSyntax || p.rule == ruleTemplateFile {
			c.templateErrors++
			c.unresolved[n] = true
		}
		c.addFinding(file, n, p.rule, p.msg)
	}
	if val == n.Value {
		return
	}
	plain := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
	n.Value = val
	if n.Style&yaml.TaggedStyle != 0 && n.ShortTag() != "!!str" {
		return // an explicit tag (!!int, !custom) is the author's choice: keep it
	}
	if plain && n.Style&yaml.TaggedStyle == 0 {
		if tag := plainScalarTag(val); tag != "" {
			n.Tag = tag
			return
		}
	}
	n.Tag = "!!str"
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Style = yaml.DoubleQuotedStyle
	}
}

var (
	plainIntRE   = regexp.MustCompile(`^[-+]?[0-9]+$`)
	plainFloatRE = regexp.MustCompile(`^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
)

// plainScalarTag is the tag both YAML parsers agree on for a substituted plain value, or "" when
// the value must stay a string.
func plainScalarTag(v string) string {
	switch {
	case plainIntRE.MatchString(v):
		return "!!int"
	case plainFloatRE.MatchString(v):
		return "!!float"
	case v == "true" || v == "false" || v == "True" || v == "False" || v == "TRUE" || v == "FALSE":
		return "!!bool"
	}
	return ""
}

// merge adds a file's top-level keys to the merged view: later values win, while the key keeps the
// position of its first appearance (Python's dict.update keeps insertion order).
func (c *Config) merge(cf *configFile) {
	seen := map[string]bool{}
	root := cf.root
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if seen[k.Value] {
			c.addFinding(cf.path, k, ruleDuplicateKey, fmt.Sprintf("key %s appears twice in this file: the later one wins, delete the other", k.Value))
		}
		seen[k.Value] = true
		if e, ok := c.index[k.Value]; ok {
			e.file, e.keyN, e.value = cf.path, k, v
			continue
		}
		e := &entry{key: k.Value, file: cf.path, keyN: k, value: v}
		c.index[k.Value] = e
		c.entries = append(c.entries, e)
	}
}

// addFinding records a load-time finding at node n of file (line 1 col 1 when n is nil).
func (c *Config) addFinding(file string, n *yaml.Node, rule, msg string) {
	r := ruleByID(rule)
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	c.findings = append(c.findings, Finding{File: file, Line: line, Col: col, Severity: r.Severity, Rule: rule, Message: msg, Since: r.Since})
}

// Files returns the config files that were loaded, in merge order.
func (c *Config) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.path
	}
	return out
}

// WorkDir is the directory relative paths resolve against.
func (c *Config) WorkDir() string { return c.workDir }

// Keys returns the merged top-level keys in order of first appearance.
func (c *Config) Keys() []string {
	out := make([]string, len(c.entries))
	for i, e := range c.entries {
		out[i] = e.key
	}
	return out
}

// errReason strips the path from *fs.PathError so messages that already name the file do not
// repeat it.
func errReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
