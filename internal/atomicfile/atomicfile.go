// Package atomicfile replaces a file whole: a reader, or a crash at any
// instant, finds either the old file or the complete new one, never a
// part of it.
//
// The new content is written to a temporary file in the same directory,
// named "."+base+".RANDOM" (a name node exporter's textfile collector and
// every *.conf glob skip) and created with O_EXCL and mode 0600, so that it
// never follows a symbolic link and never shows its content to anyone
// before it has its final mode and owner. It gets that mode and owner, is
// written, fsynced and renamed over the path; the directory is fsynced
// last, so that the rename survives a power failure too. On any error the
// temporary file is removed and the old file stays as it was.
//
// relay writes its listener's user file, OAuth token files, metrics
// textfiles and what relay import produces this way. The spool has its
// own protocol (package spool), with its own names and locks.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options are the new file's mode and owner.
type Options struct {
	Mode fs.FileMode
	// Chown gives the file UID and GID (-1 keeps the creator's), before
	// any content is written; the error names them.
	Chown    bool
	UID, GID int
}

// Write replaces path with what write writes, as the package doc says.
// Errors are the os package's (*fs.PathError and the like), or write's.
func Write(path string, o Options, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*") // O_EXCL, 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(o.Mode)
	if err == nil && o.Chown {
		if cerr := f.Chown(o.UID, o.GID); cerr != nil {
			err = fmt.Errorf("chown %d:%d: %w", o.UID, o.GID, cerr)
		}
	}
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteBytes is Write of data.
func WriteBytes(path string, o Options, data []byte) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
