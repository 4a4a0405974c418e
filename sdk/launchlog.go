package sdk

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// lifecycle are go-plugin's own messages about starting and stopping a
// process. The runner starts and stops plugins routinely (to read their info,
// to validate a policy), so at info or warn level they read like crashes;
// the runner logs the starts and deaths that matter itself.
var lifecycle = map[string]bool{
	"plugin process exited":            true,
	"plugin failed to exit gracefully": true,
	"starting plugin":                  true,
	"plugin started":                   true,
	"waiting for RPC address":          true,
	"using plugin":                     true,
}

// quietLifecycle demotes go-plugin's lifecycle messages to debug. Only the
// logger go-plugin itself writes to is wrapped: a plugin's own log lines
// arrive through Named loggers and keep their level.
type quietLifecycle struct{ hclog.Logger }

func (q quietLifecycle) demote(level hclog.Level, msg string) hclog.Level {
	// An exit is reported at error level when the process was killed,
	// which is how a plugin that missed the handshake is stopped.
	if lifecycle[msg] && level > hclog.Debug {
		return hclog.Debug
	}
	return level
}

func (q quietLifecycle) Log(level hclog.Level, msg string, args ...any) {
	q.Logger.Log(q.demote(level, msg), msg, args...)
}
func (q quietLifecycle) Info(msg string, args ...any)  { q.Log(hclog.Info, msg, args...) }
func (q quietLifecycle) Warn(msg string, args ...any)  { q.Log(hclog.Warn, msg, args...) }
func (q quietLifecycle) Error(msg string, args ...any) { q.Log(hclog.Error, msg, args...) }

// notAPlugin turns go-plugin's multi-line complaint about a binary that does
// not speak the handshake into one line that says what happened.
func notAPlugin(path string, err error) error {
	const prefix = "Unrecognized remote plugin message: "
	msg := err.Error()
	i := strings.Index(msg, prefix)
	if i < 0 {
		return nil
	}
	line, _, _ := strings.Cut(msg[i+len(prefix):], "\n")
	if line == "" {
		return fmt.Errorf("%s is not an ebb plugin: it printed nothing and exited before the plugin handshake", path)
	}
	if len(line) > 80 {
		line = line[:80] + "..."
	}
	return fmt.Errorf("%s is not an ebb plugin: it printed %q instead of the plugin handshake", path, line)
}
