package homeserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// notifySocket is the receiving end of the systemd notify protocol (sd_notify): Synapse sends
// READY=1 once its listeners are up, RELOADING=1/READY=1 around SIGHUP and STOPPING=1 at
// shutdown. It is the cheapest exact readiness signal there is.
type notifySocket struct {
	conn *net.UnixConn
	path string
}

// notifyMsg is one datagram: its fields, and the pid that sent it (from SO_PASSCRED, so another
// process cannot claim Synapse is ready).
type notifyMsg struct {
	pid    int
	fields map[string]string
}

// listenNotify creates dir/notify.sock writable by uid only (Synapse's user; -1 keeps root).
func listenNotify(dir string, uid int) (*notifySocket, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("notify socket dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "notify.sock")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale %s: %w", path, err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ns := &notifySocket{conn: conn, path: path}
	if err := ns.setup(uid); err != nil {
		conn.Close()
		return nil, err
	}
	return ns, nil
}

func (n *notifySocket) setup(uid int) error {
	if err := os.Chmod(n.path, 0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", n.path, err)
	}
	if uid >= 0 {
		if err := os.Chown(n.path, uid, -1); err != nil {
			return fmt.Errorf("chown %s: %w", n.path, err)
		}
	}
	raw, err := n.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_PASSCRED on %s: %w", n.path, serr)
	}
	return nil
}

// read returns the next datagram. It fails once the socket is closed.
func (n *notifySocket) read() (notifyMsg, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	nb, noob, _, _, err := n.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return notifyMsg{}, err
	}
	msg := notifyMsg{fields: parseNotify(string(buf[:nb]))}
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil {
		for i := range cmsgs {
			if cred, err := unix.ParseUnixCredentials(&cmsgs[i]); err == nil {
				msg.pid = int(cred.Pid)
			}
		}
	}
	return msg, nil
}

func (n *notifySocket) Close() error {
	err := n.conn.Close()
	os.Remove(n.path)
	return err
}

// parseNotify splits "READY=1\nSTATUS=..." into its fields.
func parseNotify(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}
