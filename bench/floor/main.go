// Command floor is the benchmark floor for a durable sendmail enqueue: it
// does the least any durable queue must do and nothing else. It reads the
// message from stdin, writes it to a temporary file in the spool directory,
// fsyncs the file, renames it to its final name, and fsyncs the directory so
// the rename itself survives a crash. Command-line flags (sendmail's -i -t,
// ...) are ignored; the spool directory comes from $FLOOR_SPOOL (default
// /tmp/relay-bench/floor-spool).
//
// bench/enqueue.sh builds it with the standard library only and times it
// beside relay and Postfix.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(75) // EX_TEMPFAIL, as sendmail would
	}
}

func run() error {
	dir := os.Getenv("FLOOR_SPOOL")
	if dir == "" {
		dir = "/tmp/relay-bench/floor-spool"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()

	if _, err := io.Copy(f, os.Stdin); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	// A unique final name: time + pid, as a queue id would be.
	final := filepath.Join(dir, strconv.FormatInt(time.Now().UnixNano(), 36)+"."+strconv.Itoa(os.Getpid()))
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	ok = true

	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
