package sendmailcompat

import (
	"bufio"
	"errors"
	"io"
)

// ErrTooLarge is returned by reads past the size limit.
var ErrTooLarge = errors.New("message exceeds max_message_size")

// inputReader yields a submission from stdin exactly as sent, ending at EOF
// or, unless ignoreDots (-i, -oi), at a line holding a lone dot. A leading
// dot is never removed (Postfix does not either), and only the lone dot line
// itself is swallowed. It counts bytes and fails with ErrTooLarge past limit.
type inputReader struct {
	br          *bufio.Reader
	ignoreDots  bool
	atLineStart bool
	pending     []byte // rest of the last ReadSlice; valid until br is read again
	err         error  // error that came with pending
	n, limit    int64
}

func newInputReader(r io.Reader, ignoreDots bool, limit int64) *inputReader {
	return &inputReader{br: bufio.NewReaderSize(r, 64<<10), ignoreDots: ignoreDots, atLineStart: true, limit: limit}
}

func (r *inputReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.atLineStart && !r.ignoreDots && r.loneDot() {
			r.err = io.EOF
			return 0, io.EOF
		}
		r.pending, r.err = r.br.ReadSlice('\n')
		if errors.Is(r.err, bufio.ErrBufferFull) {
			r.err = nil // a long line: the rest comes with the next slice
		}
		if len(r.pending) == 0 {
			return 0, r.err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	r.atLineStart = p[n-1] == '\n'
	r.n += int64(n)
	if r.limit > 0 && r.n > r.limit {
		r.err, r.pending = ErrTooLarge, nil
		return n, ErrTooLarge
	}
	return n, nil
}

// loneDot reports whether the input continues with ".\n", ".\r\n" or "."
// and EOF (the dot line is then left unread: input ends there).
func (r *inputReader) loneDot() bool {
	b, _ := r.br.Peek(3)
	switch {
	case len(b) >= 2 && b[0] == '.' && b[1] == '\n':
	case len(b) == 3 && b[0] == '.' && b[1] == '\r' && b[2] == '\n':
	case len(b) == 1 && b[0] == '.':
	default:
		return false
	}
	return true
}
