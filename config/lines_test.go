package config_test

import (
	"testing"

	"github.com/relaymail/relay/config"
)

func TestKeyLines(t *testing.T) {
	const doc = `# comment with key = "value"
domain = "a.example" # trailing = comment
"quoted key" = 1
'literal.key' = 2
dotted.sub.key = 3
banner = """
fake = "not a key"
[not.a.table]
"""
raw = '''
[[nor.this]]
'''
list = [
  "one", # comment ]
  "two",
  [3, 4],
]

[[smarthost]]
host = "a.example"
inline = { x = 1, y = { z = 2 } }

[ smarthost . extra ]
key = 1

[[smarthost]]
host = "b.example"   
  port = 465

[queue]
retry_min = "5m"

[[rewrite.header]]
action = "add"
[[rewrite.header]]
action = "remove"

[[a]]
[[a.b]]
x = 1
[[a.b]]
x = 2
[[a]]
[[a.b]]
x = 3
tables = [{ k = 1 }, { k = 2 }]
`
	want := map[string]int{
		"domain":                   2,
		`"quoted key"`:             3,
		`"literal.key"`:            4,
		"dotted":                   5,
		"dotted.sub":               5,
		"dotted.sub.key":           5,
		"banner":                   6,
		"raw":                      10,
		"list":                     13,
		"list[1]":                  14,
		"list[2]":                  15,
		"list[3]":                  16,
		"list[3][2]":               16,
		"smarthost":                19,
		"smarthost[1]":             19,
		"smarthost[1].host":        20,
		"smarthost[1].inline.x":    21,
		"smarthost[1].inline.y.z":  21,
		"smarthost[1].extra":       23,
		"smarthost[1].extra.key":   24,
		"smarthost[2]":             26,
		"smarthost[2].host":        27,
		"smarthost[2].port":        28,
		"queue":                    30,
		"queue.retry_min":          31,
		"rewrite":                  33,
		"rewrite.header":           33,
		"rewrite.header[1]":        33,
		"rewrite.header[1].action": 34,
		"rewrite.header[2].action": 36,
		"a[1]":                     38,
		"a[1].b[1].x":              40,
		"a[1].b[2].x":              42,
		"a[2]":                     43,
		"a[2].b[1]":                44,
		"a[2].b[1].x":              45,
		"a[2].b[1].tables[1].k":    46,
		"a[2].b[1].tables[2]":      46,
	}
	got := config.KeyLines(doc)
	for k, line := range want {
		if got[k] != line {
			t.Errorf("line of %s = %d, want %d", k, got[k], line)
		}
	}
	for _, k := range []string{"fake", "not", "not.a.table", "nor", "nor.this", "smarthost[3]", "a[3]", "a[1].b[3]", "trailing"} {
		if n, ok := got[k]; ok {
			t.Errorf("%s found at line %d; it is not a key", k, n)
		}
	}
}

// The scanner never hangs or panics on text that is not TOML.
func TestKeyLinesGarbage(t *testing.T) {
	for _, s := range []string{
		"", "[", "[[", "[[a", "[a.", "a", "a =", "a = [", "a = {", "a = \"", "a = '", `a = """`, "a = '''",
		"]]]", "= = =", "a = [}", "a = {]", "\"unterminated = 1\n[x]\nk = 1", "a = [1,,2", "x = { a = 1, = }",
		"\x00\xff", "a.=1", "[a]]\nb=1",
	} {
		config.KeyLines(s)
	}
}

func TestProblemLinesInArrayOfTables(t *testing.T) {
	// The second table's unknown key gets the second table's line, not the
	// first one's: BurntSushi alone cannot tell them apart.
	_, path, err := load(t, "[[smarthost]]\nhost = \"a.example\"\n\n[[smarthost]]\nhost = \"b.example\"\nhots = \"x\"\n[[smarthost]]\nhost = \"c.example\"\nhots = \"y\"\n", 0o600)
	got := problems(t, err, path)
	want := []string{
		`FILE:6: smarthost[2].hots: unknown key; did you mean "host"?`,
		`FILE:9: smarthost[3].hots: unknown key; did you mean "host"?`,
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("problems %q, want %q", got, want)
	}
}
