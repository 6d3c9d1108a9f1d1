package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/relaymail/relay/internal/atomicfile"
	"github.com/relaymail/relay/sysexits"
)

// WriteOptions says where and how Write puts the files.
type WriteOptions struct {
	Dir   string // absolute
	Force bool   // replace existing files
	// GID is the group of every file written (the relay group), -1 for
	// the writer's own.
	GID int
}

// Write writes DIR/relay.toml, one secret file per password and the
// generated alias file and sender map, each mode 0640 with the group
// opts.GID, each atomically (a temporary file renamed into place). Without
// Force an existing file is an error (exit 73) and nothing is written.
// It returns the paths written.
func (r *Result) Write(opts WriteOptions) ([]string, error) {
	if !filepath.IsAbs(opts.Dir) {
		return nil, sysexits.New(sysexits.Usage, "--write %s: the directory must be an absolute path", opts.Dir)
	}
	contents := map[string]string{"relay.toml": r.TOML(opts.Dir)}
	names := append([]string{"relay.toml"}, r.files()...)
	for _, sh := range r.Smarthosts {
		if sh.Password != "" {
			contents[sh.secretName()] = sh.Password + "\n"
		}
	}
	for name, text := range r.Generated() {
		contents[name] = text
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, sysexits.New(sysexits.CantCreat, "--write: %v", err)
	}
	if !opts.Force {
		for _, n := range names {
			p := filepath.Join(opts.Dir, n)
			if _, err := os.Lstat(p); err == nil {
				return nil, sysexits.New(sysexits.CantCreat, "%s exists: nothing written (--force replaces it)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, sysexits.New(sysexits.CantCreat, "%s: %v", p, pathErr(err))
			}
		}
	}
	var written []string
	for _, n := range names {
		p := filepath.Join(opts.Dir, n)
		if err := writeFile(p, []byte(contents[n]), opts.GID); err != nil {
			return written, sysexits.New(sysexits.CantCreat, "write %s: %v", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// writeFile writes data to path whole (package atomicfile): mode 0640,
// group gid (unless -1).
func writeFile(path string, data []byte, gid int) error {
	err := atomicfile.WriteBytes(path, atomicfile.Options{Mode: 0o640, Chown: gid >= 0, UID: -1, GID: gid}, data)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "chown" {
		return fmt.Errorf("cannot give it the group %d: %w", gid, pe.Err)
	}
	return pathErr(err)
}

// Generated are the alias file and sender map the import made, by file
// name (aliases, senders): what Write puts beside relay.toml.
func (r *Result) Generated() map[string]string {
	g := map[string]string{}
	if len(r.AliasEntries) > 0 {
		g["aliases"] = entries("aliases imported from "+r.Source+" by relay import", r.AliasEntries)
	}
	if len(r.SenderEntries) > 0 {
		g["senders"] = entries("sender map imported from "+r.Source+" by relay import (relay-rewrite(7), SENDER MAP)", r.SenderEntries)
	}
	return g
}
