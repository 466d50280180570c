package synapse

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzExpand: the expander never panics, leaves $-free text alone, and $$-escaping any text gives
// that text back with no problem reported.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "plain", "${A}", "${A:-d}", "${A:?m}", "$$", "${", "${A:-${B:-${C}}}", "a$b${c}d", "}${}{"} {
		f.Add(s, "value: with # and \"quotes\"\n")
	}
	f.Fuzz(func(t *testing.T, s, val string) {
		env := EnvFunc(func(name string) (string, bool) {
			if strings.HasPrefix(name, "U") {
				return "", false
			}
			return val, true
		})
		out, _ := Expand(s, env, nil)
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("Expand(%q) = %q: text without $ must not change", s, out)
		}
		escaped := strings.ReplaceAll(s, "$", "$$")
		back, probs := Expand(escaped, env, nil)
		if back != s || len(probs) != 0 {
			t.Fatalf("Expand(escape(%q)) = %q, %v", s, back, probs)
		}
	})
}

// FuzzLoad: loading arbitrary bytes never panics, and when the result renders, the rendered YAML
// parses to the same structure (node kinds and mapping keys) as the input, whatever the
// substituted values contain.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"server_name: ${HOST}\nport: ${PORT:-8008}\n",
		"a: &x {b: ${V}}\nc: *x\n",
		"l:\n  - ${V}\n  - '${V}'\n  - \"${V}\"\n  - |\n    ${V}\n",
		"k: ${UNSET}\n",
		"- not a mapping\n",
	} {
		f.Add([]byte(s), "a: b # c\n- d\n'e\"")
	}
	f.Fuzz(func(t *testing.T, data []byte, val string) {
		if len(data) > 8192 {
			return
		}
		env := EnvFunc(func(name string) (string, bool) {
			if strings.HasPrefix(name, "U") {
				return "", false
			}
			return val, true
		})
		cfg, err := Load([]string{"fuzz.yaml"}, LoadOptions{Env: env, WorkDir: "/data",
			ReadFile: func(string) ([]byte, error) { return data, nil },
			ReadDir:  func(string) ([]fs.DirEntry, error) { return nil, errors.New("not a directory") }})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Validate(ValidateOptions{Mounts: containerMounts(), Root: "/nonexistent-fuzz-root"})
		out, err := cfg.Render()
		if err != nil {
			return
		}
		var in yaml.Node
		if yaml.Unmarshal(data, &in) != nil || len(in.Content) != 1 {
			return
		}
		if hasDuplicateTopKeys(in.Content[0]) {
			return // Render keeps only the winning value, as Synapse does
		}
		var rendered yaml.Node
		if err := yaml.Unmarshal(out, &rendered); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\ninput:\n%s\nrendered:\n%s", err, data, out)
		}
		// Render pins Synapse's default signing_key_path when the input has none: not a change of
		// structure, so leave it out of the comparison.
		if top := rendered.Content[0]; top.Kind == yaml.MappingNode && len(top.Content) >= 2 &&
			top.Content[len(top.Content)-2].Value == "signing_key_path" && !hasTopKey(in.Content[0], "signing_key_path") {
			top.Content = top.Content[:len(top.Content)-2]
		}
		budget := 100000
		want, okW := shape(in.Content[0], &budget)
		budget = 100000
		got, okG := shape(rendered.Content[0], &budget)
		if okW && okG && want != got {
			t.Fatalf("structure changed\ninput:    %s\nrendered: %s\ninput:\n%s\nrendered:\n%s", want, got, data, out)
		}
	})
}

// shape describes a node's structure: kinds and mapping keys, not scalar values.
func shape(n *yaml.Node, budget *int) (string, bool) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 32 {
			return "", false
		}
		n = n.Alias
	}
	*budget--
	if n == nil || *budget < 0 {
		return "", false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return "s", true
	case yaml.SequenceNode:
		var b strings.Builder
		b.WriteString("[")
		for _, ch := range n.Content {
			s, ok := shape(ch, budget)
			if !ok {
				return "", false
			}
			b.WriteString(s + ",")
		}
		return b.String() + "]", true
	case yaml.MappingNode:
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode {
				b.WriteString(quoteKey(k.Value))
			} else {
				s, ok := shape(k, budget)
				if !ok {
					return "", false
				}
				b.WriteString(s)
			}
			s, ok := shape(n.Content[i+1], budget)
			if !ok {
				return "", false
			}
			b.WriteString(":" + s + ",")
		}
		return b.String() + "}", true
	}
	return "?", true
}

func quoteKey(s string) string { return "<" + s + ">" }

func hasDuplicateTopKeys(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

func hasTopKey(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
