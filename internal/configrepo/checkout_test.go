package configrepo

import (
	"errors"
	"testing"
)

func TestCheckSymlink(t *testing.T) {
	ok := map[string]string{
		"a":         "b",
		"dir/a":     "../b",
		"dir/x/a":   "../../b/c",
		"dir/a2":    "./sub/file",
		"templates": "dir/sub",
	}
	for p, target := range ok {
		if err := checkSymlink(p, target); err != nil {
			t.Errorf("%s -> %s refused: %v", p, target, err)
		}
	}
	bad := map[string]string{
		"a":       "../b",
		"dir/a":   "../../b",
		"dir/b":   "/etc/passwd",
		"dir/c":   "sub/../../x", // lexically inside, but sub may be a symlink to ..
		"d":       "",
		"dir/x/e": "../b/../../../x",
	}
	for p, target := range bad {
		if err := checkSymlink(p, target); !errors.Is(err, errSymlinkEscape) {
			t.Errorf("%s -> %s allowed", p, target)
		}
	}
}

func TestFilePerm(t *testing.T) {
	cases := map[string]uint32{
		"homeserver.yaml": 0o644, "example.com.signing.key": 0o600, "tls/x.pem": 0o600,
		"client_secret.txt": 0o600, "SECRETS": 0o600, "run.sh": 0o755,
	}
	for p, want := range cases {
		if got := uint32(filePerm(p, p == "run.sh")); got != want {
			t.Errorf("%s: %o, want %o", p, got, want)
		}
	}
}
