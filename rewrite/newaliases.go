package rewrite

import "github.com/relaymail/relay/config"

// Newaliases is newaliases (sendmail -bi, relay newaliases): it reads the
// alias file of cfg and returns one line per problem, every one a warning
// (file:line: warning: …), or one line when the file cannot be read at
// all. Package scripts run newaliases after installing an MTA and must not
// fail, so there is no error to return; relay reads the file at each
// submission, so there is no database to build either. No alias file
// configured: nothing to say.
func Newaliases(cfg *config.Config) []string {
	if cfg.Rewrite.Aliases == "" {
		return nil
	}
	files := Load(cfg, "").Files()
	if err := files.Errs["rewrite.aliases"]; err != nil {
		return []string{"warning: " + err.Error()}
	}
	var lines []string
	for _, p := range files.Problems {
		if p.File == cfg.Rewrite.Aliases {
			p.Warning = true
			lines = append(lines, p.String())
		}
	}
	return lines
}
