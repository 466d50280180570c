package synapse

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo, reduced to what the volume rules need.
type Mount struct {
	MountPoint string
	FSType     string
	Source     string
}

// DefaultMountinfoPath is where the kernel describes this process's mounts.
const DefaultMountinfoPath = "/proc/self/mountinfo"

// ReadMountinfo parses the mountinfo file at path.
func ReadMountinfo(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mount table %s: %w", path, err)
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("read mount table %s: %w", path, err)
	}
	return ms, nil
}

// ParseMountinfo parses the proc(5) mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Field 5 is the mount point (octal-escaped), and after the "-" separator come the filesystem type
// and the source.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("line %d: not in mountinfo format", n)
		}
		out = append(out, Mount{
			MountPoint: unescapeMountinfo(fields[4]),
			FSType:     fields[sep+1],
			Source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// unescapeMountinfo undoes the kernel's \ooo octal escapes (space, tab, newline, backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ephemeralFS are filesystem types whose content does not survive the container: its own
// copy-on-write layer and memory filesystems.
func isEphemeralFS(fsType string) bool {
	switch fsType {
	case "overlay", "aufs", "tmpfs", "ramfs", "devtmpfs", "fuse-overlayfs":
		return true
	}
	return false
}

// mountFor returns the mount that holds p: the last-mounted entry with the longest matching mount
// point (later mounts hide earlier ones at the same place).
func mountFor(mounts []Mount, p string) (Mount, bool) {
	best := -1
	for i, m := range mounts {
		if !hasPathPrefix(p, m.MountPoint) {
			continue
		}
		if best < 0 || len(m.MountPoint) >= len(mounts[best].MountPoint) {
			best = i
		}
	}
	if best < 0 {
		return Mount{}, false
	}
	return mounts[best], true
}

// onVolume reports whether path p lives on a mounted volume that outlives the container: a mount
// other than the root filesystem that is not a memory or overlay filesystem.
func onVolume(mounts []Mount, p string) (bool, Mount) {
	m, ok := mountFor(mounts, filepath.Clean(p))
	if !ok {
		return false, Mount{MountPoint: "/"}
	}
	return m.MountPoint != "/" && !isEphemeralFS(m.FSType), m
}

// resolveExisting follows symlinks in the longest existing prefix of p (the rest may not exist
// yet), so /data -> /mnt/volume is judged by the volume it points to.
func resolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for cur := p; ; cur = filepath.Dir(cur) {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(real, rest)
		}
		if cur == filepath.Dir(cur) {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// loadMounts reads the mount table once per validation.
func (v *validator) loadMounts() {
	if v.opts.Mounts != nil {
		v.mounts, v.mountsOK = v.opts.Mounts, true
		return
	}
	path := v.opts.MountinfoPath
	if path == "" {
		path = DefaultMountinfoPath
	}
	ms, err := ReadMountinfo(path)
	v.mounts, v.mountsOK = ms, err == nil && len(ms) > 0
}
