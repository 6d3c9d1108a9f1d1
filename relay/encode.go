package relay

// Re-encoding at delivery (SPEC §3). The spool keeps a message as it was
// received: 8-bit octets, lines of any length. SMTP allows lines of at
// most 998 octets, and 8-bit octets only after the server offered
// 8BITMIME (RFC 6152). When the message breaks one of these rules for the
// server at hand, relay re-encodes it on the way out, part by part:
//
//  1. A flat scan (scanMessage) looks for an 8-bit octet and a line over
//     998 octets. Nearly every message has neither and goes out untouched.
//  2. Otherwise planEncoding walks the MIME structure and records, for each
//     leaf part in order, its size, how many 8-bit octets it has, whether
//     it has a long line or a bare CR. A leaf is re-encoded when it holds a
//     long line, or 8-bit octets for a server without 8BITMIME, and it is
//     not already quoted-printable or base64: quoted-printable for a text
//     part (text/*, or no Content-Type) whose octets are at most 20 %
//     8-bit and that has no bare CR, base64 for everything else.
//  3. encodePlan.write walks the message again and writes it with those
//     leaves re-encoded and their Content-Transfer-Encoding replaced (plus
//     MIME-Version: 1.0 on a message without one). Everything else — the
//     headers, the preambles and epilogues, the boundaries, every part not
//     re-encoded — is copied byte for byte and never wrapped.
//
// Multipart bodies are entered (nested to any depth), and so are
// message/rfc822 parts (RFC 2046 forbids encoding those as a whole: their
// own parts are re-encoded). Headers are never changed, even with 8-bit
// octets (RFC 6532 UTF-8 headers: RFC 2047 encoding would need a charset
// relay does not know and would break addresses), and neither are parts
// that claim quoted-printable or base64 already. The one exception is a
// header line over 998 octets: it is folded, or encoded, or the message
// refused, as rewrite/fold.go explains.
//
// Everything streams: a line is read in pieces of at most 64 KiB, a part
// body is never held whole, and the only state kept is one record per
// leaf part. The message is read up to four times (scan, plan, a counting
// write for SIZE, the write itself), from the spool file.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"github.com/relaymail/relay/rewrite"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
)

// maxLineOctets is the longest line SMTP carries, without its CRLF (RFC
// 5321 4.5.3.1.6).
const maxLineOctets = 998

// scanResult is what the flat scan found.
type scanResult struct {
	EightBit bool // some octet ≥ 0x80 (headers included)
	LongLine bool // some line over maxLineOctets octets
}

// scanMessage reads r to its end and reports 8-bit octets and long lines.
func scanMessage(r io.Reader) (scanResult, error) {
	var res scanResult
	buf := make([]byte, 64<<10)
	lineLen := 0    // octets of the current line so far, CRs included
	lastCR := false // the last octet read was a CR
	for {
		n, err := r.Read(buf)
		b := buf[:n]
		if !res.EightBit {
			for _, c := range b {
				if c >= 0x80 {
					res.EightBit = true
					break
				}
			}
		}
		for len(b) > 0 && !res.LongLine {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				lineLen += len(b)
				lastCR = b[len(b)-1] == '\r'
				break
			}
			lineLen += i
			if (i > 0 && b[i-1] == '\r') || (i == 0 && lastCR) {
				lineLen-- // the CR of CRLF is not part of the line
			}
			if lineLen > maxLineOctets {
				res.LongLine = true
			}
			lineLen, lastCR = 0, false
			b = b[i+1:]
		}
		if lineLen > maxLineOctets+1 { // +1: a CR whose LF is still to come
			res.LongLine = true
		}
		if err == io.EOF {
			if lineLen > maxLineOctets {
				res.LongLine = true
			}
			return res, nil
		}
		if err != nil {
			return res, err
		}
	}
}

// partInfo is what the plan knows of one leaf part.
type partInfo struct {
	size     int64
	eightBit int64
	long     bool
	bareCR   bool
	text     bool   // text/*, or no Content-Type (text/plain by default)
	encoded  bool   // already quoted-printable or base64
	encode   string // "", "quoted-printable" or "base64": the decision
}

// encodePlan is the decision for each leaf part of a message, in the
// order the walk meets them.
type encodePlan struct {
	parts  []*partInfo
	folded bool // header lines over 998 octets folded or encoded
}

// encodings returns the distinct encodings the plan applies, for the log.
func (p *encodePlan) encodings() string {
	var qp, b64 int
	for _, pi := range p.parts {
		switch pi.encode {
		case "quoted-printable":
			qp++
		case "base64":
			b64++
		}
	}
	var s []string
	if qp > 0 {
		s = append(s, "quoted-printable")
	}
	if b64 > 0 {
		s = append(s, "base64")
	}
	if p.folded {
		s = append(s, "folded header")
	}
	return strings.Join(s, "+")
}

// planEncoding walks the message read from r and decides which leaf parts
// need re-encoding for a server that does (eightBitOK) or does not accept
// 8-bit octets. nil: nothing needs it; send the message as it is.
func planEncoding(r io.Reader, eightBitOK bool) (*encodePlan, error) {
	w := &walker{lr: newLineReader(r), analyze: true}
	if _, err := w.entity(nil, true); err != nil {
		return nil, err
	}
	need := w.folded
	for _, p := range w.parts {
		if p.encoded || !(p.long || (!eightBitOK && p.eightBit > 0)) {
			continue
		}
		need = true
		if p.text && !p.bareCR && p.eightBit*5 <= p.size {
			p.encode = "quoted-printable"
		} else {
			p.encode = "base64"
		}
	}
	if !need {
		return nil, nil
	}
	return &encodePlan{parts: w.parts, folded: w.folded}, nil
}

// write writes the message read from r to w with the planned parts
// re-encoded, and returns the number of octets written. r must hold the
// message the plan was made from.
func (p *encodePlan) write(w io.Writer, r io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	wk := &walker{lr: newLineReader(r), out: cw, parts: p.parts}
	_, err := wk.entity(nil, true)
	return cw.n, err
}

type countWriter struct {
	w       io.Writer
	n       int64
	last    byte
	scratch []byte
}

// WriteString saves the allocation io.WriteString would make for each
// line end quoted-printable writes.
func (c *countWriter) WriteString(s string) (int, error) {
	c.scratch = append(c.scratch[:0], s...)
	return c.Write(c.scratch)
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if n > 0 {
		c.last = b[n-1]
	}
	return n, err
}

// lineReader yields a message line by line, a long line in pieces.
type lineReader struct {
	br     *bufio.Reader
	inLine bool // the last piece did not end its line
}

const linePiece = 64 << 10

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, linePiece)}
}

// next returns the next piece of a line (valid until the next call), with
// first set when it starts a line and end when it ends one (its line end
// included). io.EOF when nothing is left.
func (l *lineReader) next() (piece []byte, first, end bool, err error) {
	b, err := l.br.ReadSlice('\n')
	first = !l.inLine
	switch {
	case err == nil:
		l.inLine = false
		return b, first, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		l.inLine = true
		return b, first, false, nil
	case err == io.EOF && len(b) > 0:
		l.inLine = false
		return b, first, true, nil
	}
	return nil, first, false, err
}

// errLongHeader: a header line over maxHeaderLine octets.
var errLongHeader = errors.New("header line too long")

const maxHeaderLine = 1 << 20

// line returns the next whole line (its line end included). A line over
// maxHeaderLine octets is returned as far as read, with errLongHeader;
// the rest of it stays unread.
func (l *lineReader) line() ([]byte, error) {
	piece, _, end, err := l.next()
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), piece...)
	for !end {
		if len(out) > maxHeaderLine {
			return out, errLongHeader
		}
		piece, _, end, err = l.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, piece...)
	}
	return out, nil
}

// Limits of the walk, as Postfix has mime_nesting_limit: deeper
// multiparts and enclosed messages, and leaf parts past maxParts, go out
// as they are (never re-encoded), so that a hostile message costs neither
// stack nor memory.
const (
	maxNesting = 50
	maxParts   = 10000
)

// walker walks a message's MIME structure, either to analyse it
// (analyze: parts are appended) or to write it (out; parts are read).
type walker struct {
	lr      *lineReader
	analyze bool
	out     *countWriter
	parts   []*partInfo
	idx     int
	depth   int  // multiparts and enclosed messages entered
	folded  bool // a header had a line over 998 octets (rewrite.FoldHeader)
}

func (w *walker) emit(b []byte) error {
	if w.analyze {
		return nil
	}
	_, err := w.out.Write(b)
	return err
}

// delimiter says whether line is a delimiter of one of bounds (innermost
// last): which one, and whether it closes.
func delimiter(line []byte, bounds []string) (idx int, closing bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' || len(line) > 1000 {
		return -1, false
	}
	s := strings.TrimRight(string(line[2:]), " \t\r\n")
	for i := len(bounds) - 1; i >= 0; i-- {
		b := bounds[i]
		if s == b {
			return i, false
		}
		if s == b+"--" {
			return i, true
		}
	}
	return -1, false
}

// entity walks one entity (the message, a part, an enclosed message): its
// header, then its body up to a delimiter of bounds or the end. It
// returns that delimiter line (nil at the end of input).
func (w *walker) entity(bounds []string, top bool) ([]byte, error) {
	var header [][]byte
	var term []byte
	for {
		line, err := w.lr.line()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errLongHeader) {
			// Not a header relay can make sense of: the entity goes out as
			// it is, up to the next delimiter.
			for _, l := range append(header, line) {
				if err := w.emit(l); err != nil {
					return nil, err
				}
			}
			return w.copyUntil(bounds)
		}
		if err != nil {
			return nil, err
		}
		if i, _ := delimiter(line, bounds); i >= 0 {
			term = line
			break
		}
		header = append(header, line)
		if isBlank(line) {
			break
		}
	}
	if rewrite.HeaderNeedsFold(header) {
		folded, err := rewrite.FoldHeader(header)
		if err != nil {
			return nil, err
		}
		header = folded
		w.folded = true
	}
	ctype, params, cte := parseHeader(header)
	ended := term != nil || len(header) == 0 || !isBlank(header[len(header)-1])
	multi := strings.HasPrefix(ctype, "multipart/") && params["boundary"] != ""
	enclosed := ctype == "message/rfc822" || ctype == "message/global"

	switch {
	case (multi || enclosed) && identityCTE(cte) && !ended && w.depth < maxNesting:
		if err := w.writeHeader(header, nil, top); err != nil {
			return nil, err
		}
		w.depth++
		defer func() { w.depth-- }()
		if enclosed {
			return w.entity(bounds, false)
		}
		return w.multipart(append(bounds[:len(bounds):len(bounds)], params["boundary"]))
	}

	// A leaf (or a container too deep: never re-encoded).
	pi := &partInfo{encoded: true}
	switch {
	case w.analyze && len(w.parts) < maxParts:
		pi.text = ctype == "" || strings.HasPrefix(ctype, "text/")
		pi.encoded = cte == "quoted-printable" || cte == "base64" || multi || enclosed
		w.parts = append(w.parts, pi)
	case !w.analyze && w.idx < len(w.parts):
		pi = w.parts[w.idx]
		w.idx++
	}
	if err := w.writeHeader(header, pi, top); err != nil {
		return nil, err
	}
	if ended {
		return term, nil
	}
	return w.leaf(bounds, pi)
}

func isBlank(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

func identityCTE(cte string) bool {
	return cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary"
}

// parseHeader finds the media type, its parameters and the transfer
// encoding (lower case) in a header.
func parseHeader(header [][]byte) (ctype string, params map[string]string, cte string) {
	var ct string
	field := func(name string) (string, bool) {
		for i := 0; i < len(header); i++ {
			k, v, ok := bytes.Cut(header[i], []byte(":"))
			if !ok || !strings.EqualFold(strings.TrimSpace(string(k)), name) {
				continue
			}
			val := strings.TrimSpace(string(v))
			for j := i + 1; j < len(header) && len(header[j]) > 0 && (header[j][0] == ' ' || header[j][0] == '\t'); j++ {
				val += " " + strings.TrimSpace(string(header[j]))
			}
			return val, true
		}
		return "", false
	}
	ct, _ = field("Content-Type")
	if ct != "" {
		mt, p, err := mime.ParseMediaType(ct)
		if err != nil && mt == "" {
			// Unparseable: a leaf of unknown type.
			return "application/octet-stream", nil, ""
		}
		ctype, params = strings.ToLower(mt), p
	}
	c, _ := field("Content-Transfer-Encoding")
	cte = strings.ToLower(strings.TrimSpace(c))
	if i := strings.IndexAny(cte, " \t;("); i >= 0 {
		cte = cte[:i]
	}
	return ctype, params, cte
}

// writeHeader writes the header as read, or, for a leaf to re-encode,
// without its Content-Transfer-Encoding field and with the new one (and
// MIME-Version on a message without it) before the blank line.
func (w *walker) writeHeader(header [][]byte, pi *partInfo, top bool) error {
	if w.analyze {
		return nil
	}
	if pi == nil || pi.encode == "" {
		for _, l := range header {
			if err := w.emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	skip, hasVersion := false, false
	var blank []byte
	for i, l := range header {
		if i == len(header)-1 && isBlank(l) {
			blank = l
			break
		}
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			if skip {
				continue
			}
		} else {
			k, _, _ := bytes.Cut(l, []byte(":"))
			name := strings.TrimSpace(string(k))
			skip = strings.EqualFold(name, "Content-Transfer-Encoding")
			hasVersion = hasVersion || strings.EqualFold(name, "MIME-Version")
			if skip {
				continue
			}
		}
		if err := w.emit(l); err != nil {
			return err
		}
	}
	add := "Content-Transfer-Encoding: " + pi.encode + "\r\n"
	if top && !hasVersion {
		add = "MIME-Version: 1.0\r\n" + add
	}
	if err := w.emit([]byte(add)); err != nil {
		return err
	}
	if blank == nil {
		blank = []byte("\r\n")
	}
	return w.emit(blank)
}

// multipart walks a multipart body: preamble, parts, epilogue. bounds
// ends with this body's boundary.
func (w *walker) multipart(bounds []string) ([]byte, error) {
	own := len(bounds) - 1
	// Preamble, up to the first delimiter.
	term, err := w.copyUntil(bounds)
	for {
		if err != nil || term == nil {
			return nil, err
		}
		i, closing := delimiter(term, bounds)
		if i != own {
			return term, nil // an outer delimiter: this body ended early
		}
		if err := w.emit(term); err != nil {
			return nil, err
		}
		if closing {
			// The epilogue, up to an outer delimiter or the end.
			return w.copyUntil(bounds[:own])
		}
		term, err = w.entity(bounds, false)
	}
}

// copyUntil copies lines through until a delimiter of bounds, which it
// returns without writing it (nil at the end).
func (w *walker) copyUntil(bounds []string) ([]byte, error) {
	for {
		piece, first, end, err := w.lr.next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if first && end && len(bounds) > 0 {
			if i, _ := delimiter(piece, bounds); i >= 0 {
				return append([]byte(nil), piece...), nil
			}
		}
		if err := w.emit(piece); err != nil {
			return nil, err
		}
	}
}

// leaf walks a leaf body up to a delimiter of bounds: records its
// statistics, or writes it re-encoded or as it is.
func (w *walker) leaf(bounds []string, pi *partInfo) ([]byte, error) {
	var enc io.WriteCloser
	if !w.analyze {
		switch pi.encode {
		case "":
			return w.copyUntil(bounds)
		case "quoted-printable":
			enc = quotedprintable.NewWriter(w.out)
		case "base64":
			enc = base64.NewEncoder(base64.StdEncoding, &wrapWriter{w: w.out})
		}
	}
	// The line end of the last line is held back: before a delimiter it
	// belongs to the delimiter (RFC 2046 5.1.1), not to the part.
	var held []byte
	lineLen := 0
	put := func(b []byte) error {
		if w.analyze {
			pi.size += int64(len(b))
			for _, c := range b {
				if c >= 0x80 {
					pi.eightBit++
				}
			}
			return nil
		}
		_, err := enc.Write(b)
		return err
	}
	var term []byte
	for {
		piece, first, end, err := w.lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if first && end && len(bounds) > 0 {
			if i, _ := delimiter(piece, bounds); i >= 0 {
				term = append([]byte(nil), piece...)
				held = nil
				break
			}
		}
		if first {
			if err := put(held); err != nil {
				return nil, err
			}
			held, lineLen = held[:0], 0
		}
		body := piece
		if end {
			n := len(body) - 1
			if n >= 0 && body[n] == '\n' {
				if n > 0 && body[n-1] == '\r' {
					n--
				}
				held = append(held[:0], body[n:]...)
				body = body[:n]
			}
		}
		lineLen += len(body)
		if w.analyze && lineLen > maxLineOctets {
			pi.long = true
		}
		if w.analyze && bytes.IndexByte(body, '\r') >= 0 {
			pi.bareCR = true
		}
		if err := put(body); err != nil {
			return nil, err
		}
	}
	if term == nil {
		// The end of the message: the last line end is the part's.
		if err := put(held); err != nil {
			return nil, err
		}
	}
	if w.analyze {
		return term, nil
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	// The delimiter's CRLF. For quoted-printable a CRLF at the end is a
	// line end of the part (held back above); base64 ignores line ends.
	if (term != nil && pi.encode == "quoted-printable") || w.out.last != '\n' {
		if _, err := w.out.Write([]byte("\r\n")); err != nil {
			return nil, err
		}
	}
	return term, nil
}

// wrapWriter breaks base64 output into lines of 76 characters.
type wrapWriter struct {
	w   io.Writer
	col int
}

func (ww *wrapWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(76-ww.col, len(b))
		if _, err := ww.w.Write(b[:k]); err != nil {
			return n, err
		}
		n += k
		ww.col += k
		b = b[k:]
		if ww.col == 76 {
			if _, err := io.WriteString(ww.w, "\r\n"); err != nil {
				return n, err
			}
			ww.col = 0
		}
	}
	return n, nil
}
