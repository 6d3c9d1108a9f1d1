package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
)

// PasswordCommandTimeout bounds a password_command.
var PasswordCommandTimeout = 30 * time.Second

// password returns the smarthost's secret, read anew for each connection:
// the first line of password_file, the first line password_command prints
// (run without a shell), or the inline password. Errors never contain the
// secret or the command's output.
func password(ctx context.Context, sh *config.Smarthost) (string, error) {
	switch {
	case sh.PasswordFile != "":
		b, err := os.ReadFile(sh.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		return firstLine(b), nil
	case len(sh.PasswordCommand) > 0:
		ctx, cancel := context.WithTimeout(ctx, PasswordCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, sh.PasswordCommand[0], sh.PasswordCommand[1:]...)
		cmd.Env = os.Environ()
		var out bytes.Buffer
		cmd.Stdout = &out
		// Commands such as pass run children (gpg, pinentry) that keep
		// stdout open: kill the whole process group on timeout, and stop
		// waiting for the pipe soon after.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			switch {
			case ctx.Err() != nil:
				err = fmt.Errorf("timed out after %v", PasswordCommandTimeout)
			case errors.As(err, &ee):
				err = fmt.Errorf("exit status %d", ee.ExitCode())
			}
			return "", fmt.Errorf("password_command %s: %v", sh.PasswordCommand[0], err)
		}
		pw := firstLine(out.Bytes())
		if pw == "" {
			return "", fmt.Errorf("password_command %s printed nothing", sh.PasswordCommand[0])
		}
		return pw, nil
	}
	return sh.Password, nil
}

func firstLine(b []byte) string {
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	return strings.TrimRight(string(line), "\r")
}
