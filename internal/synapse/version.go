package synapse

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Version is a Synapse release number. The zero Version means "unknown", which the validator
// treats as the newest release: every rule that applies today applies.
type Version struct {
	Major, Minor, Patch int
}

// IsZero reports whether the version is unknown.
func (v Version) IsZero() bool { return v == Version{} }

// String formats the version as "1.160.0", or "newest" when unknown.
func (v Version) String() string {
	if v.IsZero() {
		return "newest"
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less orders versions numerically.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads "1.160.0", "1.67", "v1.98.0rc1" or "1.160.0+dfsg" (suffixes ignored): package
// managers decorate versions and the rules only care about major.minor.patch.
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("parse Synapse version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

// mustVersion parses a version literal from the rule table; the table is constant, so a bad
// literal is a programming error caught by the tests.
func mustVersion(s string) Version {
	if s == "" {
		return Version{}
	}
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// DefaultSitePackages are the places Synapse is installed by Debian packages, pip and the official
// image's virtualenv. Globs are allowed.
func DefaultSitePackages() []string {
	return []string{
		"/usr/lib/python3/dist-packages",
		"/usr/local/lib/python3*/site-packages",
		"/usr/local/lib/python3*/dist-packages",
		"/usr/lib/python3*/site-packages",
		"/opt/venvs/matrix-synapse/lib/python3*/site-packages",
	}
}

var (
	pyVersionRE   = regexp.MustCompile(`(?m)^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']`)
	distInfoRE    = regexp.MustCompile(`^matrix_synapse-(\d+\.\d+(?:\.\d+)?)[^/]*\.(?:dist-info|egg-info)$`)
	metaVersionRE = regexp.MustCompile(`(?m)^Version:\s*(\S+)`)
)

// DetectVersion finds the Synapse version that will run: the SYNAPSE_VERSION environment variable
// when set (images pin it), else the installed package under one of the site-packages roots
// (synapse/__init__.py's __version__, or the matrix_synapse-*.dist-info metadata that newer
// releases use instead). It returns the zero Version (newest) when nothing is found, so an unknown
// installation gets every current rule.
func DetectVersion(env Env, roots []string) (Version, string, error) {
	if s, ok := lookupEnv(env, "SYNAPSE_VERSION"); ok && strings.TrimSpace(s) != "" {
		v, err := ParseVersion(s)
		if err != nil {
			return Version{}, "", fmt.Errorf("SYNAPSE_VERSION: %w", err)
		}
		return v, "SYNAPSE_VERSION", nil
	}
	for _, pattern := range roots {
		dirs, err := filepath.Glob(pattern)
		if err != nil {
			continue
		}
		for _, dir := range dirs {
			if v, ok := versionFromSitePackages(dir); ok {
				return v, dir, nil
			}
		}
	}
	return Version{}, "", nil
}

// versionFromSitePackages reads the Synapse version installed in one site-packages directory.
func versionFromSitePackages(dir string) (Version, bool) {
	if data, err := os.ReadFile(filepath.Join(dir, "synapse", "__init__.py")); err == nil {
		if m := pyVersionRE.FindSubmatch(data); m != nil {
			if v, err := ParseVersion(string(m[1])); err == nil {
				return v, true
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Version{}, false
	}
	for _, e := range entries {
		m := distInfoRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, e.Name(), "METADATA")); err == nil {
			if mm := metaVersionRE.FindSubmatch(data); mm != nil {
				if v, err := ParseVersion(string(mm[1])); err == nil {
					return v, true
				}
			}
		}
		if v, err := ParseVersion(m[1]); err == nil {
			return v, true
		}
	}
	return Version{}, false
}
