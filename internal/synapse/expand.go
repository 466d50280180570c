package synapse

import (
	"fmt"
	"strings"
)

// Template rule ids: problems found while expanding ${...} references.
const (
	ruleTemplateUnset    = "template-unset-variable"
	ruleTemplateSyntax   = "template-syntax"
	ruleTemplateFile     = "template-file-unreadable"
	maxTemplateNesting   = 8
	templateFileSuffix   = "_FILE"
	templateFileMaxBytes = 1 << 20
)

// templateProblem is one expansion problem, later turned into a Finding at the scalar's position.
type templateProblem struct {
	rule string
	msg  string
}

// expander substitutes ${...} references in scalar values. It is given the environment and a
// file reader explicitly so VAR_FILE secrets can be tested without touching the real system.
type expander struct {
	env      Env
	readFile func(string) ([]byte, error)
}

// Expand substitutes templates in s using env, reading VAR_FILE secrets with readFile. It returns
// the expanded string and a description of every problem (unset variable, bad syntax, unreadable
// secret file). Messages name variables, never their values.
//
// Supported forms: ${VAR}, ${VAR:-default} (unset or empty), ${VAR-default} (unset),
// ${VAR:?message} (error when unset or empty), ${VAR?message} (error when unset), and $$ for a
// literal $. A $ not followed by { or $ is kept as is, so secrets containing $ survive.
func Expand(s string, env Env, readFile func(string) ([]byte, error)) (string, []string) {
	e := expander{env: env, readFile: readFile}
	out, probs := e.expand(s, 0)
	msgs := make([]string, len(probs))
	for i, p := range probs {
		msgs[i] = p.rule + ": " + p.msg
	}
	return out, msgs
}

// expand is Expand on one string at a nesting depth (defaults and messages may contain templates).
func (e expander) expand(s string, depth int) (string, []templateProblem) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var probs []templateProblem
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := matchBrace(s, i+2)
			if end < 0 {
				probs = append(probs, templateProblem{ruleTemplateSyntax, "unterminated \"${\": close it with \"}\" or write \"$$\" for a literal \"$\""})
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			val, p := e.expandRef(s[i+2:end], depth)
			probs = append(probs, p...)
			b.WriteString(val)
			i = end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), probs
}

// matchBrace returns the index of the "}" closing a "${" whose body starts at start, honouring
// nested ${...} and $$ escapes, or -1 when there is none.
func matchBrace(s string, start int) int {
	depth := 1
	for j := start; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '$':
			j++
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// varNameLen returns the length of the shell variable name at the start of s.
func varNameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		digit := c >= '0' && c <= '9'
		if !letter && !(digit && i > 0) {
			return i
		}
	}
	return len(s)
}

// expandRef expands the body of one ${...} reference.
func (e expander) expandRef(body string, depth int) (string, []templateProblem) {
	n := varNameLen(body)
	if n == 0 {
		return "", []templateProblem{{ruleTemplateSyntax, fmt.Sprintf("%q is not a variable name: use ${NAME} with letters, digits and _", truncate(body, 40))}}
	}
	if depth >= maxTemplateNesting {
		return "", []templateProblem{{ruleTemplateSyntax, "templates nested too deeply"}}
	}
	name, op := body[:n], body[n:]
	val, set, probs := e.lookup(name)
	var word string
	var mode string
	switch {
	case op == "":
		mode = ""
	case strings.HasPrefix(op, ":-"), strings.HasPrefix(op, ":?"):
		mode, word = op[:2], op[2:]
	case strings.HasPrefix(op, "-"), strings.HasPrefix(op, "?"):
		mode, word = op[:1], op[1:]
	default:
		return "", append(probs, templateProblem{ruleTemplateSyntax, fmt.Sprintf("unsupported modifier after ${%s: use ${%s}, ${%s:-default} or ${%s:?message}", name, name, name, name)})
	}
	missing := !set
	if mode == ":-" || mode == ":?" {
		missing = !set || val == ""
	}
	switch {
	case !missing:
		return val, probs
	case mode == ":-" || mode == "-":
		def, p := e.expand(word, depth+1)
		return def, append(probs, p...)
	case mode == ":?" || mode == "?":
		msg, _ := e.expand(word, depth+1)
		if msg == "" {
			msg = "required"
		}
		return "", append(probs, templateProblem{ruleTemplateUnset, fmt.Sprintf("%s is not set: %s", name, msg)})
	default:
		return "", append(probs, templateProblem{ruleTemplateUnset, fmt.Sprintf("%s is not set (nor %s%s): set it, or write ${%s:-default}", name, name, templateFileSuffix, name)})
	}
}

// lookup resolves a variable: VAR itself, else the contents of the file named by VAR_FILE (the
// Docker/Kubernetes secrets convention), with trailing newlines removed because secret files are
// usually written by echo.
func (e expander) lookup(name string) (string, bool, []templateProblem) {
	if v, ok := lookupEnv(e.env, name); ok {
		return v, true, nil
	}
	path, ok := lookupEnv(e.env, name+templateFileSuffix)
	if !ok {
		return "", false, nil
	}
	if e.readFile == nil {
		return "", false, []templateProblem{{ruleTemplateFile, fmt.Sprintf("%s%s is set but files cannot be read here", name, templateFileSuffix)}}
	}
	data, err := e.readFile(path)
	if err != nil {
		return "", false, []templateProblem{{ruleTemplateFile, fmt.Sprintf("%s%s=%s: cannot read the secret file (%v): fix the path or mount the secret", name, templateFileSuffix, path, errReason(err))}}
	}
	if len(data) > templateFileMaxBytes {
		return "", false, []templateProblem{{ruleTemplateFile, fmt.Sprintf("%s%s=%s: secret file larger than %d bytes", name, templateFileSuffix, path, templateFileMaxBytes)}}
	}
	return strings.TrimRight(string(data), "\r\n"), true, nil
}

// truncate shortens s for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
