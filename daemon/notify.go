package daemon

import (
	"net"
	"os"
)

// notify sends state to systemd (sd_notify(3)) when the service manager
// asked for it with NOTIFY_SOCKET: one datagram on a unix socket, whose
// name starts with "@" for the abstract namespace. Failures are ignored:
// readiness is a courtesy, never a reason to stop delivering.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}
