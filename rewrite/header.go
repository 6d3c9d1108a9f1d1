package rewrite

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/spool"
)

// maxHeader bounds the header read into memory at delivery: 1 MiB, the
// highest header_size_limit intake allows, so a header it queued is
// always processed. A larger one (queued before that limit) is never sent
// unchanged: Content's reader fails with ErrHeaderTooLarge and the message
// waits with that reason, bounced when its lifetime ends.
const maxHeader = 1 << 20

// ErrHeaderTooLarge: the header is over maxHeader, so the rewriting
// configured (from_header, [[rewrite.header]]) cannot be applied.
var ErrHeaderTooLarge = errors.New("the header is over 1 MiB: from_header and [[rewrite.header]] cannot be applied, so the message is not sent")

// readLine reads one line (its line end included) of at most max octets,
// whatever its length within that; a longer one fails with
// ErrHeaderTooLarge. Like ReadBytes it returns io.EOF with a last line
// that has no line end.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		piece, err := br.ReadSlice('\n')
		if len(line)+len(piece) > max {
			return nil, ErrHeaderTooLarge
		}
		line = append(line, piece...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// field is one header field as stored: name, colon, value, continuation
// lines and line ends.
type field struct {
	name string
	raw  []byte
}

func (f *field) is(name string) bool { return strings.EqualFold(f.name, name) }

// value is what follows the colon, without the final line end.
func (f *field) value() string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	v = bytes.TrimSuffix(v, []byte("\n"))
	return string(bytes.TrimSuffix(v, []byte("\r")))
}

// Content implements relay.Rewriter: the message as it goes out through
// sh with the envelope sender sender. Only the header is read and
// changed; the body is copied through as a stream. When neither
// from_header = "rewrite" nor a header rule applies, content is returned
// as it is, so the message leaves byte for byte as queued.
func (r *Rules) Content(env *spool.Envelope, sh *config.Smarthost, sender string, content io.Reader) io.Reader {
	fromRewrite := r.Config.Rewrite.FromHeader == "rewrite" && sender != "" && !env.Bounce
	if !fromRewrite && len(r.Config.Rewrite.Header) == 0 {
		return content
	}
	l := &lazyReader{make: func() (io.Reader, error) {
		return r.rewriteHeader(env, sender, fromRewrite, content)
	}}
	if rs, ok := content.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return &rewindable{lazyReader: l, base: rs, start: start}
		}
	}
	return l
}

// rewindable lets the delivery read a rewritten message twice (a scan for
// 8-bit octets and long lines, then the DATA) without a copy of it:
// seeking back to the start re-reads the queued message and rewrites its
// header again, which gives the same bytes (the rewriting depends only on
// the message, the envelope and the configuration).
type rewindable struct {
	*lazyReader
	base  io.ReadSeeker
	start int64
}

func (w *rewindable) Seek(off int64, whence int) (int64, error) {
	switch {
	case off == 0 && whence == io.SeekCurrent && w.r == nil && w.err == nil:
		return 0, nil // not read yet: at the start
	case off == 0 && whence == io.SeekStart:
		if _, err := w.base.Seek(w.start, io.SeekStart); err != nil {
			return 0, err
		}
		w.r, w.err = nil, nil
		return 0, nil
	}
	return 0, errors.New("rewrite: a rewritten message can only be rewound to its start")
}

// lazyReader builds its reader on the first Read, so that an error
// reading the header reaches the delivery as a read error.
type lazyReader struct {
	make func() (io.Reader, error)
	r    io.Reader
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil && l.err == nil {
		l.r, l.err = l.make()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}

func (r *Rules) rewriteHeader(env *spool.Envelope, sender string, fromRewrite bool, content io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(content, 64<<10)
	var (
		fields []*field
		size   int
		sep    []byte
		eol    = "\n"
	)
	for {
		line, err := readLine(br, maxHeader-size)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		size += len(line)
		if len(fields) == 0 && bytes.HasSuffix(line, []byte("\r\n")) {
			eol = "\r\n"
		}
		if len(line) == 0 {
			break
		}
		if t := bytes.TrimRight(line, "\r\n"); len(t) == 0 {
			sep = line
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			last := fields[len(fields)-1]
			last.raw = append(last.raw, line...)
		} else if colon := bytes.IndexByte(line, ':'); colon > 0 {
			fields = append(fields, &field{name: strings.TrimRight(string(line[:colon]), " \t"), raw: line})
		} else {
			// Not a header line: the body starts here, as intake reads
			// it (the spool always has the empty line, so this is a
			// damaged message). The rules apply to the fields before it,
			// and the empty line is put back.
			sep = append([]byte(eol), line...)
			break
		}
		if err != nil { // EOF inside the header
			break
		}
	}
	h := &headerEdit{fields: fields, eol: eol}
	if fromRewrite {
		r.rewriteFrom(h, sender)
	}
	for _, rule := range r.Config.Rewrite.Header {
		h.apply(rule, r.expandValue(rule.Value, env))
	}
	var out bytes.Buffer
	for _, f := range h.fields {
		out.Write(f.raw)
		if !bytes.HasSuffix(f.raw, []byte("\n")) {
			out.WriteString(eol)
		}
	}
	if sep != nil {
		out.Write(sep)
	}
	return io.MultiReader(&out, br), nil
}

// expandValue replaces %h (host), %u (submitting user) and %% in a header
// rule's value.
func (r *Rules) expandValue(v string, env *spool.Envelope) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		switch v[i+1] {
		case 'h':
			b.WriteString(r.Host)
		case 'u':
			b.WriteString(env.User)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			continue
		}
		i++
	}
	return b.String()
}

// rewriteFrom makes the From address the envelope sender that goes out
// (from_header = "rewrite"), for DMARC alignment and for providers that
// refuse a From other than the login. The display name is kept; when
// there is none, one says who and where: "root on server1" (a comment
// such as cron's "(Cron Daemon)" comes first: "Cron Daemon (root on
// server1)"). The old value is kept in X-Original-From, right after. A
// From that already has the sender's address is left as it is, byte for
// byte (a DKIM signature stays valid). Reply-To is never touched.
func (r *Rules) rewriteFrom(h *headerEdit, sender string) {
	for i, f := range h.fields {
		if !f.is("From") {
			continue
		}
		orig := strings.TrimSpace(f.value())
		list, err := mailaddr.ParseList(orig)
		name, addr := "", ""
		if err == nil && len(list) > 0 {
			name, addr = list[0].Name, list[0].Addr
		}
		if len(list) == 1 && strings.EqualFold(addr, sender) {
			return
		}
		if addr != "" && !strings.Contains(orig, "<") {
			// "root@host (Cron Daemon)": a comment, not a display name.
			who := r.whoWhere(addr)
			if name != "" {
				name = name + " (" + who + ")"
			} else {
				name = who
			}
		} else if name == "" && addr != "" {
			name = r.whoWhere(addr)
		}
		from := &field{name: f.name, raw: []byte(f.name + ": " + mailaddr.FormatMailbox(name, sender) + h.eol)}
		// The old value as written, folding kept.
		xo := h.newField("X-Original-From", strings.TrimLeft(f.value(), " \t"))
		h.fields = append(h.fields[:i], append([]*field{from, xo}, h.fields[i+1:]...)...)
		return
	}
}

// whoWhere names the original sender for a display name: "root on
// server1" for a local address, "app@shop.example on server1" for another.
func (r *Rules) whoWhere(addr string) string {
	who := addr
	if r.Local(addr) {
		who = mailaddr.Local(addr)
	}
	return who + " on " + r.shortHost()
}

// headerEdit is a header being changed by rules.
type headerEdit struct {
	fields []*field
	eol    string
}

func (h *headerEdit) newField(name, value string) *field {
	return &field{name: name, raw: []byte(name + ": " + value + h.eol)}
}

// apply runs one [[rewrite.header]] rule:
//
//   - add: a new field at the end of the header (also when one exists);
//   - replace: every field of that name removed, one with the value put
//     where the first was (at the end when there was none);
//   - append: the value added at the end of each field of that name (as
//     written: " [%h]" keeps its space); a new field when there is none;
//   - remove: every field of that name removed.
func (h *headerEdit) apply(rule config.HeaderRule, value string) {
	switch rule.Action {
	case "add":
		h.fields = append(h.fields, h.newField(rule.Name, value))
	case "replace":
		kept, at := h.fields[:0], -1
		for _, f := range h.fields {
			if f.is(rule.Name) {
				if at < 0 {
					at = len(kept)
					kept = append(kept, h.newField(rule.Name, value))
				}
				continue
			}
			kept = append(kept, f)
		}
		h.fields = kept
		if at < 0 {
			h.fields = append(h.fields, h.newField(rule.Name, value))
		}
	case "append":
		found := false
		for _, f := range h.fields {
			if f.is(rule.Name) {
				found = true
				body := bytes.TrimRight(f.raw, "\r\n")
				f.raw = append(append(append([]byte(nil), body...), value...), h.eol...)
			}
		}
		if !found {
			h.fields = append(h.fields, h.newField(rule.Name, strings.TrimLeft(value, " \t")))
		}
	case "remove":
		kept := h.fields[:0]
		for _, f := range h.fields {
			if !f.is(rule.Name) {
				kept = append(kept, f)
			}
		}
		h.fields = kept
	}
}
