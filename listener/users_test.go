package listener

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/crypto/bcrypt"
)

// The specification's vectors (Drepper, "Unix crypt using SHA-256 and
// SHA-512"), which openssl passwd -6 reproduces, and hashes made with
// openssl passwd -6 for what the vectors do not cover (a salt of 16
// characters and a password longer than 64 bytes, UTF-8).
var sha512Vectors = []struct{ setting, password, want string }{
	{"$6$saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password", "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string", "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	// openssl passwd -6 -salt short 'we have a short salt string but not a short password'
	{"$6$short", "we have a short salt string but not a short password", "$6$short$qmfj2meTBr5G2EAGIJ4vjX7RpefsD4JzpEyTAeEUJdzdxlBS6pe8gdMHm5zFftaFSj/2p2bjBwyVS9ZhWpLZt."},
	// openssl passwd -6 -salt abcdefgh12345678 with 130 times 'x'
	{"$6$abcdefgh12345678", strings.Repeat("x", 130), "$6$abcdefgh12345678$I0m/cNuHJ1uBM/MyCMqyGu2u9XdxBc4.kCn3ACHSK/lzue/SkUMBQH5O98e/UFhzBSz4jtFPsFLliFrO.JzLd1"},
	// openssl passwd -6 -salt Zz09./ 'pässwörd'
	{"$6$Zz09./", "pässwörd", "$6$Zz09./$o4Ppm7HCa4h0Xd.jaV3KRCx3IMeg026Ee1iUwA/wQ4FeB6v3OwLxtDM/ZbGEz1eEY6HPNEPvn24QTiyt8Mrei0"},
}

func TestSHA512Crypt_Vectors(t *testing.T) {
	for _, v := range sha512Vectors {
		got, err := sha512Crypt(v.password, v.setting)
		if err != nil || got != v.want {
			t.Errorf("sha512Crypt(%q, %q) = %q, %v\nwant %q", v.password, v.setting, got, err, v.want)
		}
		if !verifySHA512Crypt(v.want, v.password) || verifySHA512Crypt(v.want, v.password+"x") {
			t.Errorf("verify of %q is wrong", v.want)
		}
	}
	for _, bad := range []string{"$5$salt$x", "$6$rounds=x$salt$h", "$6$rounds=5000"} {
		if _, err := sha512Crypt("p", bad); err == nil {
			t.Errorf("sha512Crypt accepted the setting %q", bad)
		}
	}
}

// Against openssl on this machine, with its own random salts.
func TestSHA512Crypt_AgainstOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	for _, pw := range []string{"s3cret", "", "a b:c", strings.Repeat("€", 40)} {
		cmd := exec.Command(openssl, "passwd", "-6", "-stdin")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl passwd -6: %v", err)
		}
		hash := strings.TrimSpace(string(out))
		if pw == "" && !strings.HasPrefix(hash, "$6$") {
			continue // some versions refuse an empty password
		}
		if !verifySHA512Crypt(hash, pw) {
			t.Errorf("openssl's %q for %q does not verify", hash, pw)
		}
		if verifySHA512Crypt(hash, pw+"!") {
			t.Errorf("openssl's %q verifies a wrong password", hash)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// Both schemes, Dovecot's prefixes, comments; and every refused line
// named with its number.
func TestUsers_ParseAndVerify(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users")
	b := bcryptHash(t, "grafana-pw")
	writeFile(t, p, "# listener users\n\ngrafana:"+b+"\ndjango:"+sha512Vectors[0].want+
		"\nnextcloud:{SHA512-CRYPT}"+sha512Vectors[7].want+"\nold:$2y$"+b[4:]+"\n")
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"grafana", "grafana-pw", true}, {"grafana", "Grafana-pw", false},
		{"django", "Hello world!", true}, {"django", "Hello world", false},
		{"nextcloud", sha512Vectors[7].password, true},
		{"old", "grafana-pw", true},
		{"nobody", "grafana-pw", false}, {"", "", false},
	} {
		if got := u.Verify(c.user, c.pw); got != c.ok {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pw, got, c.ok)
		}
	}
	if u.Len() != 4 {
		t.Errorf("%d users, want 4", u.Len())
	}

	for content, want := range map[string]string{
		"alice\n":                          "users:1: not NAME:HASH",
		"alice:plain\n":                    `users:1: user "alice": the hash is neither bcrypt`,
		"# c\nalice:" + b + "\nalice:" + b: `users:3: user "alice" is already listed`,
		"al ice:" + b:                      "users:1: user name \"al ice\" has a colon, a space",
		":" + b:                            "users:1: empty user name",
		"a:$6$salt$tooshort":               "users:1: user \"a\": bad SHA-512-crypt hash",
		"a:$2a$10$xyz":                     "users:1: user \"a\": bad bcrypt hash",
	} {
		writeFile(t, p, content)
		_, err := LoadUsers(p)
		if err == nil || !strings.Contains(err.Error(), want) || sysexits.Code(err, 0) != sysexits.Config {
			t.Errorf("file %q: error %v (exit %d), want %q and 78", content, err, sysexits.Code(err, 0), want)
		}
	}
	if _, err := LoadUsers(filepath.Join(dir, "missing")); sysexits.Code(err, 0) != sysexits.NoInput {
		t.Errorf("missing file: %v, want exit 66", err)
	}
}

// A changed file is used at the next Verify; a broken change is logged
// once and the users before stay.
func TestUsers_ReadAgainWhenChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users")
	writeFile(t, p, "app:"+bcryptHash(t, "one")+"\n")
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	var log testsmtp.LockedBuffer
	u.Log = maillog.New(&log)
	if !u.Verify("app", "one") {
		t.Fatal("first password refused")
	}
	if _, err := SetUser(p, "app", bcryptHash(t, "two"), NewFileOwner{}); err != nil {
		t.Fatal(err)
	}
	if u.Verify("app", "one") || !u.Verify("app", "two") {
		t.Error("the changed password is not in force")
	}
	writeFile(t, p+".new", "broken\n")
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if !u.Verify("app", "two") {
			t.Error("a broken file took the users away")
		}
	}
	if n := strings.Count(log.String(), "not NAME:HASH"); n != 1 {
		t.Errorf("%d log lines about the broken file, want 1:\n%s", n, log.String())
	}
}

// SetUser: adds, changes in place keeping every other line, deletes;
// keeps the mode and owner of the file; makes a new one with the owner
// given; leaves a file it cannot parse alone.
func TestSetUser(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users")
	h1, h2 := bcryptHash(t, "a"), bcryptHash(t, "b")
	own := NewFileOwner{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o640}
	if existed, err := SetUser(p, "grafana", h1, own); err != nil || existed {
		t.Fatalf("add to a new file: %v %v", existed, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	writeFile(t, p, "# who may AUTH\n"+string(b)+"django:"+h1) // no final newline
	os.Chmod(p, 0o600)
	if existed, err := SetUser(p, "grafana", h2, own); err != nil || !existed {
		t.Fatalf("change: %v %v", existed, err)
	}
	if _, err := SetUser(p, "nextcloud", h1, own); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "# who may AUTH\ngrafana:" + h2 + "\ndjango:" + h1 + "\nnextcloud:" + h1 + "\n"
	if string(got) != want {
		t.Errorf("file\n%s\nwant\n%s", got, want)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after a change, want the file's 0600 kept", fi.Mode().Perm())
	}
	if _, err := SetUser(p, "django", "", own); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); strings.Contains(string(got), "django") {
		t.Errorf("django not deleted:\n%s", got)
	}
	if _, err := SetUser(p, "django", "", own); sysexits.Code(err, 0) != sysexits.NoUser {
		t.Errorf("deleting a missing user: %v, want exit 67", err)
	}
	if _, err := SetUser(p, "bad name", h1, own); sysexits.Code(err, 0) != sysexits.Usage {
		t.Errorf("a bad name: %v, want exit 64", err)
	}
	writeFile(t, p, "garbage\n")
	if _, err := SetUser(p, "x", h1, own); sysexits.Code(err, 0) != sysexits.Config {
		t.Errorf("a broken file: %v, want exit 78", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "garbage\n" {
		t.Errorf("a broken file was rewritten: %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if os.Geteuid() == 0 {
		q := filepath.Join(dir, "owned")
		if _, err := SetUser(q, "a", h1, NewFileOwner{UID: 0, GID: 4242, Mode: 0o640}); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(q)
		if st := fi.Sys().(*syscall.Stat_t); st.Gid != 4242 || fi.Mode().Perm() != 0o640 {
			t.Errorf("new file gid %d mode %v, want 4242 and 0640", st.Gid, fi.Mode().Perm())
		}
	}
}

// Two writers at once: both users end up in the file (the directory
// lock serialises them).
func TestSetUser_Concurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users")
	h := bcryptHash(t, "pw")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := SetUser(p, "user"+string(rune('a'+i)), h, NewFileOwner{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o600}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	hashes, err := ParseUsers(mustRead(t, p), p)
	if err != nil || len(hashes) != 8 {
		t.Errorf("%d users after 8 concurrent adds (%v)", len(hashes), err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil || !strings.HasPrefix(h, "$2a$10$") || bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Errorf("HashPassword: %q %v", h, err)
	}
	if _, err := HashPassword(strings.Repeat("x", 73)); sysexits.Code(err, 0) != sysexits.DataErr {
		t.Errorf("a 73-byte password: %v, want exit 65", err)
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("an empty password was hashed")
	}
}
