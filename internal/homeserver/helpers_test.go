package homeserver

import "net"

func netDialUnixgram(path string) (net.Conn, error) { return net.Dial("unixgram", path) }
