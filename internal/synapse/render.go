package synapse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxRenderNodes bounds alias expansion while rendering ("billion laughs" documents).
const maxRenderNodes = 200_000

// Render returns the merged, templated configuration as one YAML document for Synapse's -c. Aliases
// are expanded (an anchor may live in a value a later file overrode), templated strings are double
// quoted so Python's YAML 1.1 cannot re-type them, and an unset signing_key_path is pinned to the
// file Synapse would have used next to the original config. Nothing else changes. It fails when a file did
// not load or a template could not be resolved: such a config must not reach Synapse. The output
// contains secrets: write it with WriteRendered.
func (c *Config) Render() (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil { // never let an encoder bug take down PID 1
			out, err = nil, fmt.Errorf("render config: yaml encoder failed: %v", r)
		}
	}()
	for _, f := range c.findings {
		if f.Severity == SeverityError {
			return nil, fmt.Errorf("render config: %s:%d: %s (run check for every problem)", f.File, f.Line, f.Rule)
		}
	}
	if c.templateErrors > 0 {
		return nil, errors.New("render config: unresolved templates (run check for every problem)")
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	budget := maxRenderNodes
	for _, e := range c.entries {
		v, err := copyNode(e.value, &budget, false)
		if err != nil {
			return nil, fmt.Errorf("render config key %s: %w", e.key, err)
		}
		k := *e.keyN
		m.Content = append(m.Content, &k, v)
	}
	if !c.Has("signing_key_path") && !c.Has("signing_key") {
		// Synapse's default is next to the last config file: pin it, or running from the rendered
		// copy elsewhere would make Synapse look for (and mint) a key in the wrong place.
		if p := c.SigningKeyPath(); p != "" {
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "signing_key_path"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p, Style: yaml.DoubleQuotedStyle})
		}
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m},
		HeadComment: "Rendered by the entrypoint from " + strings.Join(c.Files(), ", ") + ". Do not edit: it contains secrets and is regenerated at every start."}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}

// copyNode deep-copies n, replacing aliases by copies of their targets. With normalize it also
// drops comments and presentation style, for comparing values rather than text.
func copyNode(n *yaml.Node, budget *int, normalize bool) (*yaml.Node, error) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 32 {
			return nil, errors.New("alias chain too long")
		}
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	*budget--
	if *budget < 0 {
		return nil, errors.New("document too large after expanding aliases")
	}
	c := *n
	c.Anchor, c.Alias = "", nil
	if normalize {
		c.HeadComment, c.LineComment, c.FootComment = "", "", ""
		c.Style = 0
		c.Line, c.Column = 0, 0
	}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			cc, err := copyNode(ch, budget, normalize)
			if err != nil {
				return nil, err
			}
			c.Content[i] = cc
		}
	}
	return &c, nil
}

// WriteRendered writes a rendered config atomically (temporary file in the same directory, fsync,
// rename) with mode 0600, because it contains secrets. It refuses a path inside a git worktree: the
// rendered secrets must never be committed to the config repository.
func WriteRendered(path string, data []byte) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("write rendered config %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if wt := gitWorktreeOf(dir); wt != "" {
		return fmt.Errorf("write rendered config %s: inside the git worktree %s; choose a path outside it so secrets are never committed", abs, wt)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write rendered config %s: create directory: %w", abs, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write rendered config %s: create temporary file: %w", abs, err)
	}
	tmpName := tmp.Name()
	cleanup := func(step string, err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("write rendered config %s: %s: %w", abs, step, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return cleanup("chmod", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return cleanup("write", err)
	}
	if err := tmp.Sync(); err != nil {
		return cleanup("sync", err)
	}
	if err := tmp.Close(); err != nil {
		return cleanup("close", err)
	}
	if err := os.Rename(tmpName, abs); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write rendered config %s: rename: %w", abs, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// gitWorktreeOf returns the root of the git worktree containing dir, or "".
func gitWorktreeOf(dir string) string {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// ReloadableDiff compares two configurations top-level key by top-level key on their templated
// values (comments and quoting ignored) and reports the keys that differ, sorted, and whether every
// difference is one Synapse applies on SIGHUP (the caches section). Changes to the log config file
// or TLS certificate files (see ReloadableFiles) are also SIGHUP-reloadable but live outside the
// config; any other change needs a restart.
func ReloadableDiff(old, new *Config) (onlyReloadable bool, changedKeys []string) {
	if old == nil || new == nil {
		return false, nil
	}
	keys := map[string]bool{}
	for _, e := range old.entries {
		keys[e.key] = true
	}
	for _, e := range new.entries {
		keys[e.key] = true
	}
	onlyReloadable = true
	for k := range keys {
		if valueText(old, k) == valueText(new, k) {
			continue
		}
		changedKeys = append(changedKeys, k)
		if k != "caches" {
			onlyReloadable = false
		}
	}
	sort.Strings(changedKeys)
	return onlyReloadable, changedKeys
}

// valueText is the normalised YAML of a top-level value ("" when absent), for comparison.
func valueText(c *Config, key string) string {
	e, ok := c.index[key]
	if !ok {
		return ""
	}
	budget := maxRenderNodes
	n, err := copyNode(e.value, &budget, true)
	if err != nil {
		return "\x00unrenderable"
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return "\x00unrenderable"
	}
	return "=" + string(out)
}
