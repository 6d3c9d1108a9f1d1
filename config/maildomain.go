package config

import (
	"bufio"
	"os"
	"strings"
	"sync"
)

// MailnamePath and HostsPath are the files MailDomain reads; variables so
// tests can point them elsewhere.
var (
	MailnamePath = "/etc/mailname"
	HostsPath    = "/etc/hosts"
)

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

var systemDomain struct {
	sync.Mutex
	cache map[[2]string]string // (MailnamePath, HostsPath) → domain
}

// MailDomain returns the domain that qualifies bare names: Domain if set,
// else the first line of /etc/mailname, else the host's fully qualified
// name: the host name if it has a dot, else the first name with a dot that
// starts with hostname+"." on a line of /etc/hosts naming the host, else the
// bare host name. It never queries DNS. The system's answer is computed
// once per process (for each pair of MailnamePath and HostsPath).
func (c *Config) MailDomain() string {
	if c.Domain != "" {
		return c.Domain
	}
	key := [2]string{MailnamePath, HostsPath}
	systemDomain.Lock()
	defer systemDomain.Unlock()
	if d, ok := systemDomain.cache[key]; ok {
		return d
	}
	d := findMailDomain(key[0], key[1])
	if systemDomain.cache == nil {
		systemDomain.cache = map[[2]string]string{}
	}
	systemDomain.cache[key] = d
	return d
}

func findMailDomain(mailname, hosts string) string {
	if b, err := os.ReadFile(mailname); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		if d := strings.TrimSpace(first); isHostname(d) {
			return d
		}
	}
	h, err := hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	if strings.Contains(h, ".") {
		return h
	}
	if fqdn := fqdnFromHosts(hosts, h); fqdn != "" {
		return fqdn
	}
	return h
}

// fqdnFromHosts looks in a hosts(5) file for a line naming host and returns
// the first name on it that starts with host+".".
func fqdnFromHosts(path, host string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		names := fields[1:]
		named := false
		for _, n := range names {
			if strings.EqualFold(n, host) {
				named = true
				break
			}
		}
		if !named {
			continue
		}
		for _, n := range names {
			if len(n) > len(host)+1 && strings.EqualFold(n[:len(host)+1], host+".") && isHostname(n) {
				return n
			}
		}
	}
	return ""
}
