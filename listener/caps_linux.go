package listener

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropBindCapability gives up CAP_NET_BIND_SERVICE once the sockets are
// open. A daemon started by systemd as User=relay with
// AmbientCapabilities=CAP_NET_BIND_SERVICE needs it only for bind(2); kept,
// it would also pass (ambient) to every program the daemon runs, such as a
// password_command. Root is left alone: the daemon gives up root itself
// when it takes the spool owner's identity. The capability is lowered in
// the permitted set of every thread (capabilities are per thread on
// Linux), which lowers it in the effective and ambient sets too; other
// capabilities stay. Where it cannot be done the capability is kept and
// Serve logs a warning (holdsBindCapability): a binary built with cgo
// cannot change every thread (the Go runtime refuses; relay is shipped
// without cgo), and a seccomp filter without capset (systemd's
// SystemCallFilter=~@privileged) answers EPERM.
func dropBindCapability() error {
	if os.Geteuid() == 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if data[0].Permitted&bindBit == 0 {
		return nil
	}
	const bit = bindBit
	data[0].Permitted &^= bit
	data[0].Effective &^= bit
	data[0].Inheritable &^= bit
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	switch errno {
	case 0, syscall.ENOTSUP, syscall.EPERM:
		return nil
	}
	return fmt.Errorf("capset: %w", errno)
}

const bindBit = uint32(1) << unix.CAP_NET_BIND_SERVICE // < 32: in data[0]

// holdsBindCapability reports whether a process that is not root still
// holds CAP_NET_BIND_SERVICE (dropBindCapability could not give it up).
func holdsBindCapability() bool {
	if os.Geteuid() == 0 {
		return false
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Permitted&bindBit != 0
}
