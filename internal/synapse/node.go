package synapse

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ref is a YAML node together with the file it came from, so findings about nested values point
// at the right file after a multi-file merge. A zero n means "absent".
type ref struct {
	file string
	n    *yaml.Node
}

// deref follows aliases (with a bound, against alias loops).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 32; i++ {
		n = n.Alias
	}
	return n
}

// ok reports whether the node is present.
func (r ref) ok() bool { return r.n != nil }

// isNull reports whether the node is absent or an explicit YAML null (Python None).
func (r ref) isNull() bool {
	return r.n == nil || (r.n.Kind == yaml.ScalarNode && r.n.ShortTag() == "!!null")
}

// get returns the value of key in a mapping (the last one when duplicated, as PyYAML does).
func (r ref) get(key string) ref {
	if r.n == nil || r.n.Kind != yaml.MappingNode {
		return ref{file: r.file}
	}
	var found *yaml.Node
	for i := 0; i+1 < len(r.n.Content); i += 2 {
		if k := r.n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			found = r.n.Content[i+1]
		}
	}
	return ref{file: r.file, n: deref(found)}
}

// has reports whether key is present in a mapping (even with a null value).
func (r ref) has(key string) bool {
	if r.n == nil || r.n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(r.n.Content); i += 2 {
		if k := r.n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return true
		}
	}
	return false
}

// keyNode returns the key node of key in a mapping, for pointing findings at the key itself.
func (r ref) keyNode(key string) ref {
	if r.n == nil || r.n.Kind != yaml.MappingNode {
		return ref{file: r.file}
	}
	var found *yaml.Node
	for i := 0; i+1 < len(r.n.Content); i += 2 {
		if k := r.n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			found = k
		}
	}
	return ref{file: r.file, n: found}
}

// items returns the elements of a sequence.
func (r ref) items() []ref {
	if r.n == nil || r.n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]ref, len(r.n.Content))
	for i, ch := range r.n.Content {
		out[i] = ref{file: r.file, n: deref(ch)}
	}
	return out
}

// str returns a scalar's text (any scalar: Python would read most as str where Synapse wants one).
func (r ref) str() (string, bool) {
	if r.n == nil || r.n.Kind != yaml.ScalarNode || r.isNull() {
		return "", false
	}
	return r.n.Value, true
}

// isString reports whether the scalar is a string for PyYAML (quoted, or plain and not a YAML 1.1
// bool, int, float or null).
func (r ref) isString() bool {
	if r.n == nil || r.n.Kind != yaml.ScalarNode {
		return false
	}
	if _, isBool := r.pyBool(); isBool {
		return false
	}
	return r.n.ShortTag() == "!!str"
}

// plainStyle reports whether a scalar was written without quotes, i.e. PyYAML will resolve its type.
func (r ref) plainStyle() bool {
	return r.n != nil && r.n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 &&
		(r.n.Tag == "" || r.n.Tag == "!!str" || r.n.Tag == "!!bool" || r.n.Tag == "!!int" || r.n.Tag == "!!float" || r.n.Tag == "!!null")
}

// pyBool returns the value of a scalar PyYAML (YAML 1.1) reads as a bool: true/false, yes/no,
// on/off in their three spellings.
func (r ref) pyBool() (value, isBool bool) {
	if r.n == nil || r.n.Kind != yaml.ScalarNode {
		return false, false
	}
	if r.n.Tag == "!!bool" {
		v, err := strconv.ParseBool(strings.ToLower(r.n.Value))
		if err == nil {
			return v, true
		}
		switch strings.ToLower(r.n.Value) {
		case "yes", "on":
			return true, true
		case "no", "off":
			return false, true
		}
	}
	if !r.plainStyle() {
		return false, false
	}
	switch r.n.Value {
	case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

// truthy approximates how Synapse reads a flag: real bools, then strtobool-style strings, then
// Python truthiness (non-empty, non-zero).
func (r ref) truthy() bool {
	if r.isNull() {
		return false
	}
	if v, ok := r.pyBool(); ok {
		return v
	}
	switch r.n.Kind {
	case yaml.SequenceNode, yaml.MappingNode:
		return len(r.n.Content) > 0
	case yaml.ScalarNode:
		if i, ok := r.integer(); ok {
			return i != 0
		}
		switch strings.ToLower(r.n.Value) {
		case "", "n", "no", "f", "false", "off", "0":
			return false
		}
		return true
	}
	return false
}

// integer returns a scalar PyYAML reads as an int (decimal, with optional underscores).
func (r ref) integer() (int64, bool) {
	if r.n == nil || r.n.Kind != yaml.ScalarNode {
		return 0, false
	}
	if !r.plainStyle() && r.n.Tag != "!!int" {
		return 0, false
	}
	s := strings.ReplaceAll(r.n.Value, "_", "")
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// strList returns the scalar items of a sequence.
func (r ref) strList() []string {
	var out []string
	for _, it := range r.items() {
		if s, ok := it.str(); ok {
			out = append(out, s)
		}
	}
	return out
}
