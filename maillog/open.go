package maillog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/syslog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// syslogAddr, when not empty, is the unixgram socket syslog lines go to
// instead of the system's (/dev/log): tests set it.
var syslogAddr string

// Open opens the target named by the configuration's [log] to: "stderr"
// (also the meaning of ""), "syslog", or an absolute file path (see the
// package documentation for the format of each). stderr is the process's
// standard error (nil: os.Stderr): the target itself for "stderr", and
// for a file or syslog the fallback that receives lines the target
// refused, with the reason.
//
// Its errors, for syslog without a reachable local socket, a file that
// cannot be opened or created, or any other value of to, start with
// "log: ".
func Open(to string, stderr io.Writer) (*Logger, error) {
	if stderr == nil {
		stderr = os.Stderr
	}
	fallback := sink{w: stderr, journal: isJournal(stderr)}
	switch {
	case to == "" || to == "stderr":
		if stderr == io.Discard {
			return &Logger{kind: toDiscard}, nil
		}
		return &Logger{kind: toWriter, w: stderr, journal: fallback.journal}, nil
	case to == "syslog":
		w, err := dialSyslog()
		if err != nil {
			return nil, fmt.Errorf("log: syslog: %w", err)
		}
		return &Logger{kind: toSyslog, sys: w, fallback: fallback, now: time.Now}, nil
	case filepath.IsAbs(to):
		f, err := openLogFile(to)
		if err != nil {
			return nil, err
		}
		return &Logger{kind: toFile, path: to, file: f, pid: pidString(), fallback: fallback, now: time.Now}, nil
	}
	return nil, fmt.Errorf(`log: to = %q: want "stderr", "syslog" or an absolute file path`, to)
}

// OpenBestEffort opens the log for a process that must print nothing on
// stderr when it succeeds, such as sendmail (its callers take any output
// as a failure). It never fails and never writes to stderr:
//
//   - "stderr" and "syslog" log to syslog when its local socket accepts a
//     connection, and discard otherwise (stderr is not the daemon's
//     journal stream here: it is the caller's terminal or cron's mail);
//   - a file path is appended to when this process may write to it and it
//     is an existing regular file other than stderr; otherwise lines are
//     discarded. The file is never created: one created by a user's
//     sendmail would belong to that user and lock the daemon out.
//
// A line that the target refuses later is dropped.
func OpenBestEffort(to string) *Logger {
	switch {
	case to == "" || to == "stderr" || to == "syslog":
		if w, err := dialSyslog(); err == nil {
			return &Logger{kind: toSyslog, sys: w, now: time.Now}
		}
	case filepath.IsAbs(to):
		// O_NONBLOCK: opening a FIFO without a reader must not hang.
		f, err := os.OpenFile(to, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
		if err != nil {
			break
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || isStderr(fi) {
			f.Close()
			break
		}
		return &Logger{kind: toFile, path: to, file: f, pid: pidString(), now: time.Now}
	}
	return &Logger{kind: toDiscard}
}

func dialSyslog() (*syslog.Writer, error) {
	if syslogAddr != "" {
		return syslog.Dial("unixgram", syslogAddr, syslog.LOG_MAIL|syslog.LOG_INFO, Tag)
	}
	return syslog.Dial("", "", syslog.LOG_MAIL|syslog.LOG_INFO, Tag)
}

// openLogFile opens path for appending, creating it with mode 0640
// whatever the umask (the relay group reads it); an existing file keeps
// the mode its administrator gave it.
func openLogFile(path string) (*os.File, error) {
	var err error
	for range 2 { // the file may vanish between the two opens
		var f *os.File
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			if err := f.Chmod(0o640); err != nil {
				f.Close()
				return nil, fmt.Errorf("log: %w", err)
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("log: %w", err)
}

// isJournal reports whether w is the journal stream systemd connected to
// the service (sd_journal_stream_fd(3): JOURNAL_STREAM is "dev:inode").
func isJournal(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// isStderr reports whether fi is the file the process's stderr is.
func isStderr(fi fs.FileInfo) bool {
	se, err := os.Stderr.Stat()
	return err == nil && os.SameFile(fi, se)
}
