package maillog_test

import (
	"testing"

	"github.com/relaymail/relay/maillog"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "4bX9", `4bX9`},
		{"address", "<ann@example.org>", `<ann@example.org>`},
		{"relay", "smtp.yandex.ru[77.88.21.158]:465", `smtp.yandex.ru[77.88.21.158]:465`},
		{"non-ASCII letters stay bare", "Иван", `Иван`},
		{"empty", "", `""`},
		{"space", "250 2.0.0 Ok", `"250 2.0.0 Ok"`},
		{"quotes", `say "hi"`, `"say \"hi\""`},
		{"backslash", `C:\dir`, `"C:\\dir"`},
		{"equals", "a=b", `"a=b"`},
		{"quote alone", `"`, `"\""`},
		{"LF", "a\nb", `"a; b"`},
		{"CR", "a\rb", `"a; b"`},
		{"multi-line SMTP reply", "250-first\r\n250 second\r\n", `"250-first; 250 second"`},
		{"blanks around breaks", "  a  \n\t b ", `"  a; b "`},
		{"only a line break", "\r\n", `""`},
		{"empty inner line", "a\n\nb", `"a; ; b"`},
		{"tab", "a\tb", `"a\tb"`},
		{"escape sequence", "\x1b[31mred", `"\x1b[31mred"`},
		{"NUL", "a\x00b", `"a\x00b"`},
		{"DEL", "a\x7f", `"a\x7f"`},
		{"C1 control", "a\u0085b", `"a\u0085b"`},
		{"line separator", "a\u2028b", `"a\u2028b"`},
		{"non-breaking space", "a\u00a0b", "\"a\u00a0b\""},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := maillog.Quote(tc.in); got != tc.want {
				t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"no secrets", "pass=hunter2", nil, "pass=hunter2"},
		{"empty secret ignored", "pass=hunter2", []string{""}, "pass=hunter2"},
		{"every occurrence", "hunter2 and hunter2", []string{"hunter2"}, "**** and ****"},
		{"several secrets", "user:hunter2@tok3n", []string{"hunter2", "tok3n"}, "user:****@****"},
		{"longer first whatever the order", "password=pass", []string{"pass", "password"}, "****=****"},
		{"absent", "nothing here", []string{"hunter2"}, "nothing here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := maillog.Mask(tc.in, tc.secrets...); got != tc.want {
				t.Errorf("Mask(%q, %q) = %q, want %q", tc.in, tc.secrets, got, tc.want)
			}
		})
	}
}
