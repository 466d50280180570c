package synapse

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Severity says whether a finding stops Synapse (or the entrypoint) from working correctly.
type Severity string

// The two severities `check` reports. Warnings fail only with --strict.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one problem found while loading or validating a configuration. File, Line and Col
// point at the offending YAML node, or at the closest parent (line 1 col 1 of the file) when the
// problem is something missing. Message never contains a secret value.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	Severity Severity `json:"severity"`
	Rule     string   `json:"rule"`
	Message  string   `json:"message"`
	// Since is the first Synapse release the rule applies to; empty means every release.
	Since string `json:"since"`
}

// String renders the finding in the compiler-style line format editors understand:
// "file:line:col: severity rule-id: message".
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s %s: %s", f.File, f.Line, f.Col, f.Severity, f.Rule, f.Message)
}

// Findings is a list of findings with helpers for the exit-code decision.
type Findings []Finding

// HasErrors reports whether the findings should fail a check: any error, or, when strict, any
// finding at all.
func (fs Findings) HasErrors(strict bool) bool {
	for _, f := range fs {
		if f.Severity == SeverityError || strict {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings, for summaries.
func (fs Findings) Count() (errors, warnings int) {
	for _, f := range fs {
		if f.Severity == SeverityError {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}

// JSON encodes the findings as an array (never null), the `check --format json` output.
func (fs Findings) JSON() ([]byte, error) {
	if fs == nil {
		fs = Findings{}
	}
	return json.MarshalIndent(fs, "", "  ")
}

// sortFindings orders findings by the load order of their files, then position, then rule id, so
// output is stable and reads top to bottom like the files do.
func sortFindings(fs Findings, fileOrder map[string]int) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			oa, oka := fileOrder[a.File]
			ob, okb := fileOrder[b.File]
			if oka && okb && oa != ob {
				return oa < ob
			}
			if oka != okb {
				return oka
			}
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Rule < b.Rule
	})
}
