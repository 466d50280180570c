package synapse

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"1.160.0": {1, 160, 0}, "1.67": {1, 67, 0}, "v1.98.0rc1": {1, 98, 0}, "1.160.0+dfsg-1": {1, 160, 0},
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseVersion("latest"); err == nil {
		t.Error("want an error")
	}
	if !(Version{1, 60, 0}).Less(Version{1, 67, 0}) || (Version{1, 67, 0}).Less(Version{1, 67, 0}) {
		t.Error("Less")
	}
}

func TestRuleVersionGating(t *testing.T) {
	r := Rule{Since: "1.67"}
	if r.applies(Version{1, 60, 0}) || !r.applies(Version{1, 67, 0}) || !r.applies(Version{}) {
		t.Error("since gating")
	}
	u := Rule{Until: "1.67"}
	if !u.applies(Version{1, 60, 0}) || u.applies(Version{1, 67, 0}) || u.applies(Version{}) {
		t.Error("until gating")
	}
}

func TestDetectVersion(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	writeFile(t, filepath.Join(old, "synapse", "__init__.py"), "import sys\n__version__ = \"1.60.0\"\n")
	modern := filepath.Join(dir, "modern")
	writeFile(t, filepath.Join(modern, "synapse", "__init__.py"), "from synapse.util import SYNAPSE_VERSION\n")
	writeFile(t, filepath.Join(modern, "matrix_synapse-1.160.0.dist-info", "METADATA"), "Metadata-Version: 2.1\nName: matrix-synapse\nVersion: 1.160.0\n")

	v, src, err := DetectVersion(MapEnv{}, []string{filepath.Join(dir, "nope"), old})
	if err != nil || v != (Version{1, 60, 0}) || src != old {
		t.Errorf("from __init__.py: %v %s %v", v, src, err)
	}
	v, _, err = DetectVersion(MapEnv{}, []string{filepath.Join(dir, "mod*")})
	if err != nil || v != (Version{1, 160, 0}) {
		t.Errorf("from dist-info: %v %v", v, err)
	}
	v, src, err = DetectVersion(MapEnv{"SYNAPSE_VERSION": "1.98.0"}, []string{old})
	if err != nil || v != (Version{1, 98, 0}) || src != "SYNAPSE_VERSION" {
		t.Errorf("from env: %v %s %v", v, src, err)
	}
	if _, _, err := DetectVersion(MapEnv{"SYNAPSE_VERSION": "bogus"}, nil); err == nil {
		t.Error("bad SYNAPSE_VERSION must fail")
	}
	v, _, err = DetectVersion(nil, []string{filepath.Join(dir, "nope")})
	if err != nil || !v.IsZero() || v.String() != "newest" {
		t.Errorf("unknown: %v %v", v, err)
	}
}

func TestParseMountinfo(t *testing.T) {
	const info = `1071 1018 0:118 / / rw,relatime master:421 - overlay overlay rw,lowerdir=/x,upperdir=/y,workdir=/z
1072 1071 0:121 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1080 1071 8:1 /var/lib/docker/volumes/data/_data /data rw,relatime - ext4 /dev/sda1 rw
1081 1071 8:1 /srv/my\040dir /mnt/with\040space rw - ext4 /dev/sda1 rw
1082 1071 0:50 / /data/cache rw - tmpfs tmpfs rw
`
	ms, err := ParseMountinfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 || ms[3].MountPoint != "/mnt/with space" || ms[2].FSType != "ext4" {
		t.Fatalf("parsed %+v", ms)
	}
	for p, want := range map[string]bool{
		"/data/homeserver.db": true, "/data": true, "/database": false, "/synapse/media": false,
		"/mnt/with space/x": true, "/data/cache/x": false, "/": false,
	} {
		if got, _ := onVolume(ms, p); got != want {
			t.Errorf("onVolume(%s) = %v, want %v", p, got, want)
		}
	}
	if _, err := ParseMountinfo(strings.NewReader("garbage line\n")); err == nil {
		t.Error("garbage must fail")
	}
	// The real table of this process parses.
	if real, err := ReadMountinfo(DefaultMountinfoPath); err != nil || len(real) == 0 {
		t.Errorf("ReadMountinfo(%s): %v", DefaultMountinfoPath, err)
	}
}
