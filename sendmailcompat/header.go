package sendmailcompat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sysexits"
)

// field is one header field exactly as received: name, colon, value and
// every continuation line, with their line ends.
type field struct {
	name string // as written
	raw  []byte
}

// key is the field name in lower case, for comparisons.
func (f *field) key() string { return strings.ToLower(f.name) }

// value returns what follows the colon, line end removed, folding kept.
func (f *field) value() string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	return string(trimEOL(v))
}

// setValue replaces what follows the colon, keeping the field's line end.
func (f *field) setValue(v string) {
	eol := f.raw[len(trimEOL(f.raw)):]
	f.raw = append(append([]byte(f.name+":"), v...), eol...)
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// header is a message's header section as received.
type header struct {
	fields []*field
	// crlf: the submission uses CRLF line ends (judged by its first line),
	// so added fields use them too.
	crlf bool
	// sep is the empty line that ended the header ("" when the body began
	// without one, or at EOF).
	sep []byte
	// bodyStart is the first body line when it ended the header without an
	// empty line before it; it belongs to the body.
	bodyStart []byte
}

func (h *header) eol() string {
	if h.crlf {
		return "\r\n"
	}
	return "\n"
}

// get returns the fields named name (case-insensitive).
func (h *header) get(name string) []*field {
	var out []*field
	for _, f := range h.fields {
		if f.key() == name {
			out = append(out, f)
		}
	}
	return out
}

func (h *header) has(name string) bool { return len(h.get(name)) > 0 }

// remove deletes every field named name.
func (h *header) remove(name string) {
	kept := h.fields[:0]
	for _, f := range h.fields {
		if f.key() != name {
			kept = append(kept, f)
		}
	}
	h.fields = kept
}

// add appends a field at the end (top: at the beginning).
func (h *header) add(name, value string, top bool) {
	f := &field{name: name, raw: []byte(name + ": " + value + h.eol())}
	if top {
		h.fields = append([]*field{f}, h.fields...)
	} else {
		h.fields = append(h.fields, f)
	}
}

// writeTo writes the header, the separating empty line (added when the
// submission had none before its body) and the first body line if the
// parser took it.
func (h *header) writeTo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range h.fields {
		bw.Write(f.raw)
	}
	if h.sep != nil {
		bw.Write(h.sep)
	} else {
		bw.WriteString(h.eol())
	}
	bw.Write(h.bodyStart)
	return bw.Flush()
}

// isFieldStart reports whether line begins a header field: a name of
// printable ASCII other than colon, then a colon (obsolete syntax allows
// spaces before it).
func isFieldStart(line []byte) (name string, ok bool) {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return "", false
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if j >= len(line) || line[j] != ':' {
		return "", false
	}
	return string(line[:i]), true
}

// DefaultHeaderSizeLimit is header_size_limit's default, Postfix's: 100 KiB.
const DefaultHeaderSizeLimit = 100 << 10

// ErrHeaderTooLarge is the error of a header section over
// header_size_limit: the message is refused (exit 65, 552 over SMTP).
var ErrHeaderTooLarge = errors.New("message header exceeds header_size_limit")

// ErrUnsendableHeader is the error of a header that no SMTP server may
// take and relay cannot fold (see sendableHeader): the message is refused
// (exit 65, 554 over SMTP).
var ErrUnsendableHeader = errors.New("message header cannot be sent over SMTP")

// readHeader reads the header section. A leading mbox "From " line is
// dropped. The header ends at an empty line, at EOF, or at the first line
// that is neither a field nor a continuation: that line starts the body (as
// in Postfix's cleanup), so a message without any header is all body.
//
// The header is held in memory, so it is bounded: past limit octets (the
// whole section, line ends included; 0 means DefaultHeaderSizeLimit)
// reading stops with ErrHeaderTooLarge, having held at most limit octets
// and one buffer of br.
func readHeader(br *bufio.Reader, limit int64) (*header, error) {
	if limit <= 0 {
		limit = DefaultHeaderSizeLimit
	}
	h := &header{}
	first := true
	var size int64
	for {
		line, err := readLine(br, limit-size)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		size += int64(len(line))
		if len(line) == 0 {
			return h, nil
		}
		if first {
			h.crlf = bytes.HasSuffix(line, []byte("\r\n"))
			first = false
			if bytes.HasPrefix(line, []byte("From ")) {
				continue
			}
		}
		if len(trimEOL(line)) == 0 && bytes.HasSuffix(line, []byte("\n")) {
			h.sep = line
			return h, nil
		}
		if (line[0] == ' ' || line[0] == '\t') && len(h.fields) > 0 {
			last := h.fields[len(h.fields)-1]
			last.raw = append(last.raw, line...)
		} else if name, ok := isFieldStart(line); ok {
			h.fields = append(h.fields, &field{name: name, raw: line})

		} else {
			h.bodyStart = line
			return h, nil
		}
		if err != nil { // EOF inside the header: end the last line
			if !bytes.HasSuffix(line, []byte("\n")) {
				last := h.fields[len(h.fields)-1]
				last.raw = append(last.raw, h.eol()...)
			}
			return h, nil
		}
	}
}

// readLine reads one line (its line end included) of at most max octets:
// a longer one fails with ErrHeaderTooLarge, the rest of it unread. Like
// ReadBytes it returns io.EOF with a last line that has no line end.
func readLine(br *bufio.Reader, max int64) ([]byte, error) {
	var line []byte
	for {
		piece, err := br.ReadSlice('\n')
		if int64(len(line)+len(piece)) > max {
			return nil, ErrHeaderTooLarge
		}
		line = append(line, piece...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// sendableHeader refuses a header that no SMTP server may take and that
// relay cannot make sendable: a structured field (an address, a
// Message-ID) with a line over 998 octets and no white space to fold at.
// rewrite.FoldHeader decides, as it does at delivery, so that what intake
// takes can always be sent: refused now, the caller still has the message
// and learns why, instead of its sender getting a bounce later.
func sendableHeader(h *header) error {
	for _, f := range h.fields {
		lines := bytes.SplitAfter(f.raw, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if !rewrite.HeaderNeedsFold(lines) {
			continue
		}
		if _, err := rewrite.FoldHeader(lines); err != nil {
			return sysexits.Wrap(sysexits.DataErr, fmt.Errorf("%w: %v", ErrUnsendableHeader, err))
		}
	}
	return nil
}
