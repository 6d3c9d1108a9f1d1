// Package docs_test checks the manual pages in docs/ against the program
// they describe: every configuration key the loader accepts is in
// relay.toml(5) and in relay.toml.example and nothing else is; every
// command, flag and exit code is in relay(8); the pages build with
// packaging/man.sh and mandoc -T lint finds nothing in them; every link
// between the pages leads somewhere.
package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/relaymail/relay/config"
)

// loaderKey is a key the configuration loader accepts: its dotted path
// ("smarthost.port", "rewrite.header.name") and the Go type it decodes
// into.
type loaderKey struct {
	path string
	typ  reflect.Type
}

var unmarshaler = reflect.TypeFor[toml.Unmarshaler]()

// loaderKeys walks the configuration's TOML struct tags as the loader
// does (config/decode.go): a struct field, or a slice of structs, that
// does not decode itself (Size, Duration, RateLimit do) is a table; the
// rest are keys. It returns the keys and the tables ("smarthost",
// "rewrite.header", …).
func loaderKeys() (keys []loaderKey, tables []string) {
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshaler) {
				tables = append(tables, path)
				walk(path, ft)
				continue
			}
			keys = append(keys, loaderKey{path, f.Type})
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	return keys, tables
}

// docTypes are the types relay.toml(5) may give a key of each Go type.
func docTypes(t reflect.Type) []string {
	switch {
	case t.Name() == "Size":
		return []string{"size"}
	case t.Name() == "Duration":
		return []string{"duration"}
	case t.Name() == "RateLimit":
		return []string{"rate"}
	case t.Kind() == reflect.String:
		return []string{"string", "path", "address"}
	case t.Kind() == reflect.Int:
		return []string{"integer"}
	case t.Kind() == reflect.Bool:
		return []string{"boolean"}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return []string{"array of strings"}
	}
	return []string{"(no documented type for " + t.String() + ")"}
}

// pageKey is one entry of relay.toml(5)'s KEYS section.
type pageKey struct {
	path, typ, rest, example string
	line                     int
}

var (
	tableHeadingRE = regexp.MustCompile("^### (?:Top level|`?\\[\\[?([a-z_.]+)\\]\\]?`?)$")
	keyItemRE      = regexp.MustCompile("^- `([a-z_]+)` \\(([^;)]+);(.*)$")
	exampleRE      = regexp.MustCompile("Example:\\s+`([a-z_]+ = [^`]+)`")
)

// pageKeys reads the KEYS section of relay.toml(5): a "### [table]"
// heading per table ("### Top level" for the keys outside any), and in
// it one list item per key: "- `key` (type; default …): what. Example:
// `key = value`.".
func pageKeys(t *testing.T) (keys []pageKey, tables []string) {
	t.Helper()
	lines := strings.Split(readFile(t, "relay.toml.5.md"), "\n")
	in, table := false, ""
	var cur *pageKey
	flush := func() {
		if cur != nil {
			if m := exampleRE.FindStringSubmatch(cur.rest); m != nil {
				cur.example = m[1]
			}
			keys = append(keys, *cur)
			cur = nil
		}
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "## "):
			flush()
			in = l == "## KEYS"
			continue
		case !in:
			continue
		case strings.HasPrefix(l, "### "):
			flush()
			m := tableHeadingRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("relay.toml.5.md:%d: %q: a KEYS subsection is \"### Top level\" or \"### [table]\"", i+1, l)
				table = "?"
				continue
			}
			table = m[1]
			if table != "" {
				tables = append(tables, table)
			}
		case strings.HasPrefix(l, "- "):
			flush()
			m := keyItemRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("relay.toml.5.md:%d: %q: a key is documented as \"- `key` (type; default …): …\"", i+1, l)
				continue
			}
			path := m[1]
			if table != "" {
				path = table + "." + m[1]
			}
			cur = &pageKey{path: path, typ: strings.TrimSpace(m[2]), rest: m[3], line: i + 1}
		case cur != nil && strings.HasPrefix(l, "  "):
			cur.rest += " " + strings.TrimSpace(l)
		default:
			flush()
		}
	}
	flush()
	return keys, tables
}

// TestKeys_ManualPageHasEveryKey: every key the loader accepts has its
// entry in relay.toml(5), with the type of its Go field, a default and
// an example; every entry there is a key the loader accepts; the tables
// match too.
func TestKeys_ManualPageHasEveryKey(t *testing.T) {
	want, wantTables := loaderKeys()
	got, gotTables := pageKeys(t)
	documented := map[string]pageKey{}
	for _, k := range got {
		if _, dup := documented[k.path]; dup {
			t.Errorf("relay.toml.5.md:%d: %s is documented twice", k.line, k.path)
		}
		documented[k.path] = k
	}
	accepted := map[string]bool{}
	for _, k := range want {
		accepted[k.path] = true
		d, ok := documented[k.path]
		if !ok {
			t.Errorf("relay.toml(5) does not document %s (the loader accepts it): add it to KEYS in docs/relay.toml.5.md", k.path)
			continue
		}
		if types := docTypes(k.typ); !slices.Contains(types, d.typ) {
			t.Errorf("relay.toml.5.md:%d: %s is documented as %q; its type is one of %q", d.line, k.path, d.typ, types)
		}
		if !strings.HasPrefix(strings.TrimSpace(d.rest), "default") && !strings.HasPrefix(strings.TrimSpace(d.rest), "required") {
			t.Errorf("relay.toml.5.md:%d: %s: after the type comes \"default …\" (or \"required\")", d.line, k.path)
		}
		leaf := k.path[strings.LastIndex(k.path, ".")+1:]
		if !strings.HasPrefix(d.example, leaf+" = ") {
			t.Errorf("relay.toml.5.md:%d: %s has no example \"Example: `%s = …`\"", d.line, k.path, leaf)
		}
	}
	for _, k := range got {
		if !accepted[k.path] {
			t.Errorf("relay.toml.5.md:%d: %s is documented but the loader does not accept it", k.line, k.path)
		}
	}
	slices.Sort(wantTables)
	slices.Sort(gotTables)
	if !slices.Equal(wantTables, gotTables) {
		t.Errorf("relay.toml(5) KEYS has the tables %q; the loader has %q", gotTables, wantTables)
	}
}

// context holds the keys an example needs beside it to load: a smarthost
// has a host and a login, a header rule an action, a name and a value.
var context = map[string][]string{
	"smarthost":      {`host = "smtp.example.com"`, `username = "robot@example.com"`, `password_file = "/etc/relay/smarthost.secret"`},
	"rewrite.header": {`action = "append"`, `name = "Subject"`, `value = " [%h]"`},
	// [smarthost.oauth] belongs to a [[smarthost]] that has no password.
	"smarthost.oauth": {`provider = "microsoft"`, `client_id = "00000000-0000-0000-0000-000000000000"`},
}

// companions are keys that only load together.
var companions = map[string]string{
	"smarthost.tls_client_cert": `tls_client_key = "/etc/relay/client.key"`,
	"smarthost.tls_client_key":  `tls_client_cert = "/etc/relay/client.pem"`,
	// The listener's keys each need the one before them: AUTH only after
	// STARTTLS, AUTH networks only with users.
	"smarthost.region":            `preset = "ses"`,
	"daemon.listen_tls":           `listen_tls_key = "/etc/ssl/private/mail.key"`,
	"daemon.listen_tls_key":       `listen_tls = "/etc/ssl/certs/mail.pem"`,
	"daemon.listen_users":         `listen_tls = "self-signed"`,
	"daemon.listen_auth_networks": "listen_tls = \"self-signed\"\nlisten_users = \"/etc/relay/listener-users\"",
}

// ownContext replaces the context of keys that belong to another kind of
// table: a service account has no client_id.
var ownContext = map[string][]string{
	"smarthost.oauth.service_account_file": {`provider = "google"`, `flow = "service_account"`},
	"smarthost.oauth.subject":              {`provider = "google"`, `flow = "service_account"`, `service_account_file = "/etc/relay/sa-key.json"`},
}

var secrets = []string{"password", "password_file", "password_command"}

// TestKeys_ManualPageExamplesLoad: each example of relay.toml(5), in its
// table with what it needs beside it, loads without an error.
func TestKeys_ManualPageExamplesLoad(t *testing.T) {
	keys, _ := pageKeys(t)
	dir := t.TempDir()
	for i, k := range keys {
		if k.example == "" {
			continue // TestKeys_ManualPageHasEveryKey says so
		}
		table, leaf := "", k.path
		if j := strings.LastIndex(k.path, "."); j >= 0 {
			table, leaf = k.path[:j], k.path[j+1:]
		}
		var lines []string
		switch table {
		case "":
		case "smarthost", "rewrite.header":
			lines = append(lines, "[["+table+"]]")
		case "smarthost.oauth":
			lines = append(lines, "[[smarthost]]", `host = "smtp.example.com"`, `username = "robot@example.com"`, "["+table+"]")
		default:
			lines = append(lines, "["+table+"]")
		}
		ctx := context[table]
		if own, ok := ownContext[k.path]; ok {
			ctx = own
		}
		for _, c := range ctx {
			name, _, _ := strings.Cut(c, " = ")
			if name == leaf || slices.Contains(secrets, leaf) && slices.Contains(secrets, name) {
				continue
			}
			lines = append(lines, c)
		}
		if c, ok := companions[k.path]; ok {
			lines = append(lines, c)
		}
		lines = append(lines, k.example)
		text := strings.Join(lines, "\n") + "\n"
		path := filepath.Join(dir, fmt.Sprintf("example%d.toml", i))
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(config.Location{Path: path, Required: true, DefaultSpool: config.SystemSpool}); err != nil {
			t.Errorf("relay.toml.5.md:%d: the example of %s does not load:\n%s\n%v", k.line, k.path, text, err)
		}
	}
}

var (
	exampleTableRE = regexp.MustCompile(`^#?\s*\[\[?([a-z_.]+)\]\]?(\s|$)`)
	exampleKeyRE   = regexp.MustCompile(`^#?\s*([a-z_]+)\s*=`)
)

// TestKeys_ExampleFileHasEveryKey: relay.toml.example loads, has every
// key the loader accepts in its table (set, or commented out with an
// example value), and no key the loader does not accept.
func TestKeys_ExampleFileHasEveryKey(t *testing.T) {
	const file = "../relay.toml.example"
	if _, err := config.Load(config.Location{Path: file, Required: true, DefaultSpool: config.SystemSpool}); err != nil {
		t.Errorf("%s does not load:\n%v", file, err)
	}
	want, _ := loaderKeys()
	accepted := map[string]bool{}
	for _, k := range want {
		accepted[k.path] = true
	}
	seen := map[string]bool{}
	table := ""
	for i, l := range strings.Split(readFile(t, file), "\n") {
		if m := exampleTableRE.FindStringSubmatch(l); m != nil {
			table = m[1]
			continue
		}
		m := exampleKeyRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		path := m[1]
		if table != "" {
			path = table + "." + m[1]
		}
		seen[path] = true
		if !accepted[path] {
			t.Errorf("relay.toml.example:%d: %s is not a key the loader accepts", i+1, path)
		}
	}
	for _, k := range want {
		if !seen[k.path] {
			t.Errorf("relay.toml.example does not have %s (the loader accepts it): add it, commented out with an example value if it has no default", k.path)
		}
	}
}

// readFile reads a file of docs/ (or, with "../", of the module).
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
