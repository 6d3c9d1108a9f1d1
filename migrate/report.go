package migrate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"

	"github.com/relaymail/relay/sysexits"
)

// Status is what became of one source setting.
type Status string

const (
	Mapped      Status = "mapped"       // carried over, to Note.To
	NotNeeded   Status = "not needed"   // relay does it itself, or has no such part
	NotPossible Status = "not possible" // relay cannot do it; Note.Why says what to do
	Insecure    Status = "insecure"     // not carried over; the secure equivalent is proposed
	Unknown     Status = "unknown"      // a key this import does not know
)

// Note is the fate of one source setting.
type Note struct {
	File   string
	Line   int
	Key    string // the setting as the source names it
	Status Status
	To     string // Mapped: the relay key (and value) it became
	Why    string // why, or what to do instead
}

// String is "file:line: key: status: to (why)".
func (n Note) String() string {
	s := n.File
	if n.Line > 0 {
		s += fmt.Sprintf(":%d", n.Line)
	}
	s += ": " + n.Key + ": " + string(n.Status)
	switch n.Status {
	case Mapped:
		s += " to " + n.To
		if n.Why != "" {
			s += " (" + n.Why + ")"
		}
	case Unknown:
		s += " key: not imported, check it by hand"
		if n.Why != "" {
			s += " (" + n.Why + ")"
		}
	default:
		if n.To != "" {
			s += ": became " + n.To
		}
		if n.Why != "" {
			s += ": " + n.Why
		}
	}
	return s
}

// WriteReport prints the notes, one a line, by file and line, then a
// count per status.
func WriteReport(w io.Writer, notes []Note) {
	notes = slices.Clone(notes)
	sort.SliceStable(notes, func(i, j int) bool {
		if notes[i].File != notes[j].File {
			return notes[i].File < notes[j].File
		}
		return notes[i].Line < notes[j].Line
	})
	count := map[Status]int{}
	for _, n := range notes {
		fmt.Fprintln(w, n.String())
		count[n.Status]++
	}
	fmt.Fprintf(w, "%d settings: %d mapped, %d not needed, %d not possible, %d insecure (not carried over), %d unknown\n",
		len(notes), count[Mapped], count[NotNeeded], count[NotPossible], count[Insecure], count[Unknown])
}

// SourceError is a source file that cannot be read as its program would:
// exit 65 (EX_DATAERR).
type SourceError struct {
	File string
	Line int
	Msg  string
}

func (e *SourceError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

func srcErr(file string, line int, format string, args ...any) error {
	return sysexits.Wrap(sysexits.DataErr, &SourceError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// readSource reads a source file: a missing one exits 66 (EX_NOINPUT), an
// unreadable one 66 too (77 when permission is denied).
func readSource(path string) ([]byte, fs.FileMode, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		code := sysexits.NoInput
		if errors.Is(err, fs.ErrPermission) {
			code = sysexits.NoPerm
		}
		return nil, 0, sysexits.Wrap(code, fmt.Errorf("cannot read %s: %w", path, pathErr(err)))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, sysexits.New(sysexits.NoInput, "cannot read %s: %v", path, pathErr(err))
	}
	return b, fi.Mode().Perm(), nil
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
