package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/relaymail/relay/listener"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/sys/unix"
)

// listenerCmd is `relay listener passwd [--delete] NAME`: it sets (or
// removes) NAME in the [daemon] listen_users file (package listener,
// passwd.go). The password comes from the terminal, asked twice without
// echo, or else is the first line of standard input.
func (c *cli) listenerCmd(args []string) error {
	if len(args) == 0 || args[0] != "passwd" {
		return sysexits.New(sysexits.Usage, "listener: use relay listener passwd [--delete] NAME")
	}
	args = args[1:]
	del := len(args) > 0 && (args[0] == "--delete" || args[0] == "-d")
	if del {
		args = args[1:]
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return sysexits.New(sysexits.Usage, "listener passwd: use relay listener passwd [--delete] NAME")
	}
	name := args[0]
	if err := listener.CheckName(name); err != nil {
		return sysexits.New(sysexits.Usage, "listener passwd: %v", err)
	}
	cfg := c.lenientConfig()
	path := cfg.Daemon.ListenUsers
	if path == "" {
		return sysexits.New(sysexits.Config, "listener passwd: %s sets no [daemon] listen_users file", cfg.Path)
	}
	hash := ""
	if !del {
		pw, err := c.readPassword()
		if err != nil {
			return err
		}
		if hash, err = listener.HashPassword(pw); err != nil {
			return err
		}
	}
	gid := -1
	if u, err := user.Lookup(cfg.Daemon.User); err == nil {
		gid, _ = strconv.Atoi(u.Gid)
	}
	existed, err := listener.SetUser(path, name, hash, listener.DefaultNewFileOwner(gid))
	if err != nil {
		return err
	}
	switch {
	case del:
		fmt.Fprintf(c.stdout, "%s: user %s deleted\n", path, name)
	case existed:
		fmt.Fprintf(c.stdout, "%s: password of %s changed\n", path, name)
	default:
		fmt.Fprintf(c.stdout, "%s: user %s added\n", path, name)
	}
	return nil
}

// readPassword asks twice on a terminal (without echo; prompts on
// stderr), else reads the first line of standard input.
func (c *cli) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			pw, err := askNoEcho(f, t, c.stderr, "Password: ")
			if err != nil {
				return "", err
			}
			again, err := askNoEcho(f, t, c.stderr, "Again: ")
			if err != nil {
				return "", err
			}
			if pw != again {
				return "", sysexits.New(sysexits.DataErr, "listener passwd: the passwords differ")
			}
			return pw, nil
		}
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", sysexits.New(sysexits.NoInput, "listener passwd: no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// askNoEcho turns echo off before it prints the prompt (a password typed
// ahead of the prompt is not shown either), reads a line and restores the
// terminal.
func askNoEcho(f *os.File, t *unix.Termios, prompt io.Writer, text string) (string, error) {
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet); err != nil {
		return "", sysexits.New(sysexits.IOErr, "listener passwd: terminal: %v", err)
	}
	fmt.Fprint(prompt, text)
	line, err := bufio.NewReader(f).ReadString('\n')
	unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", sysexits.New(sysexits.NoInput, "listener passwd: no password read")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
