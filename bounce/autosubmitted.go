package bounce

import (
	"mime"
	"net/textproto"
	"strings"
)

// reportTypes are the multipart/report types that are themselves
// notifications (RFC 3464, RFC 8098, RFC 6533): never answered with a
// bounce.
var reportTypes = map[string]bool{
	"delivery-status":                 true,
	"global-delivery-status":          true,
	"disposition-notification":        true,
	"global-disposition-notification": true,
}

// IsAutoSubmitted reports whether a message header marks an automatic
// reply or report that must never be answered with another bounce: an
// Auto-Submitted field (RFC 3834) with a keyword other than "no" (comments
// and parameters ignored; an empty value does not count), or a
// Content-Type of multipart/report whose report-type is a delivery status
// or disposition notification. A message from the null sender must be
// recognized by the caller from its envelope.
func IsAutoSubmitted(header textproto.MIMEHeader) bool {
	for _, v := range header.Values("Auto-Submitted") {
		if k := autoSubmittedKeyword(v); k != "" && k != "no" {
			return true
		}
	}
	for _, v := range header.Values("Content-Type") {
		mt, params := parseContentType(v)
		if mt == "multipart/report" && reportTypes[strings.ToLower(params["report-type"])] {
			return true
		}
	}
	return false
}

// autoSubmittedKeyword is the lower-cased keyword of an Auto-Submitted
// value: comments removed, parameters (after ";") dropped.
func autoSubmittedKeyword(v string) string {
	v = stripComments(v)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// stripComments removes RFC 5322 comments (nested, with quoted pairs).
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseContentType parses a Content-Type value; when mime.ParseMediaType
// refuses it (duplicate or malformed parameters), it falls back to a
// lenient split so that a sloppy report is still recognized.
func parseContentType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params
	}
	params = map[string]string{}
	fields := strings.Split(stripComments(v), ";")
	mt = strings.ToLower(strings.TrimSpace(fields[0]))
	for _, f := range fields[1:] {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if _, dup := params[k]; !dup {
			params[k] = val
		}
	}
	return mt, params
}
