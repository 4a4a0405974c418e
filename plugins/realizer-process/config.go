package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Config is the plugin block's `config { }`.
type Config struct {
	Command      []string          `json:"command"`
	Vars         map[string]string `json:"vars"`
	Env          map[string]string `json:"env"`
	StateDir     string            `json:"state-dir"`
	LogDir       string            `json:"log-dir"`
	Workdir      string            `json:"workdir"`
	DrainTimeout sdk.Duration      `json:"drain-timeout"`
	BootTime     sdk.Duration      `json:"boot-time"`
	// MemoryPerThreadMB is Amoro's group property `memory`: the local
	// container starts `optimizer.sh start <memory * threads> …`.
	MemoryPerThreadMB int64 `json:"memory-per-thread-mb"`
}

// Built-in placeholders of the command template. {group} and {target} are
// the same value: Amoro calls the target an optimizer group. {heap} is the
// unit's memory in MB, optimizer.sh's second argument (its -Xmx).
var builtins = []string{"unit", "threads", "heap", "group", "target", "chain"}

// ConfigSchema is the plugin block's published config schema; its defaults
// are what the runner fills in.
func ConfigSchema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "command", Type: sdk.TypeListString, Required: true, Description: "argv of one unit, run without a shell and staying in the foreground, " +
			"e.g. [\"/opt/amoro/bin/optimizer.sh\", \"start-foreground\", \"{heap}\", \"-a\", \"{ams}\", \"-p\", \"{threads}\", \"-g\", \"{group}\", \"-id\", \"{unit}\"]. " +
			"Placeholders: {unit} (unit id), {threads} (unit size), {heap} (memory-per-thread-mb × threads), {group} and {target} (the chain's target), {chain}, " +
			"and {key} for every key of vars. Write {{ and }} for literal braces."},
		{Name: "vars", Type: sdk.TypeMapString, Default: map[string]string{}, Description: "Extra placeholders, e.g. ams-url = \"thrift://localhost:1261\". " +
			"Config overrides may change them for units started later."},
		{Name: "env", Type: sdk.TypeMapString, Default: map[string]string{}, Description: "Extra environment of each unit; values may use the placeholders. " +
			"Units also get EBB_UNIT, EBB_THREADS, EBB_TARGET and EBB_CHAIN."},
		{Name: "state-dir", Type: sdk.TypeString, Required: true, Description: "Directory of the pid files that let a restarted plugin find its units again; created if missing."},
		{Name: "log-dir", Type: sdk.TypeString, Default: "", Description: "Directory of the units' stdout and stderr files (<unit>.log); empty means state-dir."},
		{Name: "workdir", Type: sdk.TypeString, Default: "", Description: "Working directory of the units; a relative command path is found from here. Empty means the runner's."},
		{Name: "drain-timeout", Type: sdk.TypeDuration, Default: "15m", Description: "How long a unit may take to exit after SIGTERM before its process group is killed."},
		{Name: "boot-time", Type: sdk.TypeDuration, Default: "0s", Description: "A unit younger than this is reported as booting, then as running."},
		{Name: "memory-per-thread-mb", Type: sdk.TypeNumber, Default: 1024, Description: "Amoro's group property `memory`: {heap} = this × threads, the heap in MB optimizer.sh gives the JVM."},
	}}
}

func defaultConfig() Config {
	return Config{DrainTimeout: sdk.Duration(15 * time.Minute), MemoryPerThreadMB: 1024}
}

var placeholderName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// parseConfig decodes and checks a config, creating its directories. The
// returned config has absolute directories, so that a unit started later
// does not depend on the plugin's working directory.
func parseConfig(raw []byte) (Config, error) {
	c := defaultConfig()
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	if len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "" {
		return Config{}, errors.New("command is empty: give the argv of one unit, e.g. [\"./bin/optimizer.sh\", \"-id\", \"{unit}\"]")
	}
	for k := range c.Vars {
		if !placeholderName.MatchString(k) {
			return Config{}, fmt.Errorf("vars: %q cannot be a placeholder name (letters, digits, '_' and '-', not starting with a digit or '-')", k)
		}
		if slices.Contains(builtins, k) {
			return Config{}, fmt.Errorf("vars: %q is a built-in placeholder and cannot be redefined", k)
		}
	}
	if c.MemoryPerThreadMB < 1 || c.MemoryPerThreadMB > 1<<20 {
		return Config{}, fmt.Errorf("memory-per-thread-mb %d: want 1 to %d", c.MemoryPerThreadMB, 1<<20)
	}
	known := placeholderValues(sdk.Target{}, "", 0, 0, c.Vars, nil)
	for i, arg := range c.Command {
		if _, err := expand(arg, known); err != nil {
			return Config{}, fmt.Errorf("command[%d] %q: %w", i, arg, err)
		}
	}
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return Config{}, fmt.Errorf("env: %q is not a valid variable name", k)
		}
		if _, err := expand(v, known); err != nil {
			return Config{}, fmt.Errorf("env %s: %w", k, err)
		}
	}
	var err error
	if strings.TrimSpace(c.StateDir) == "" {
		return Config{}, errors.New("state-dir is required: the directory where pid files and unit logs are kept")
	}
	if c.StateDir, err = prepareDir("state-dir", c.StateDir); err != nil {
		return Config{}, err
	}
	if c.LogDir == "" {
		c.LogDir = c.StateDir
	} else if c.LogDir, err = prepareDir("log-dir", c.LogDir); err != nil {
		return Config{}, err
	}
	if c.Workdir != "" {
		if c.Workdir, err = filepath.Abs(c.Workdir); err != nil {
			return Config{}, fmt.Errorf("workdir: %w", err)
		}
		if fi, err := os.Stat(c.Workdir); err != nil || !fi.IsDir() {
			return Config{}, fmt.Errorf("workdir %s is not a directory", c.Workdir)
		}
	}
	if err := checkExecutable(c.Command[0], c.Workdir); err != nil {
		return Config{}, err
	}
	return c, nil
}

// prepareDir creates dir and proves it writable now rather than when the
// first unit is started.
func prepareDir(what, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("%s: cannot create %s: %w", what, abs, err)
	}
	f, err := os.CreateTemp(abs, ".probe-")
	if err != nil {
		return "", fmt.Errorf("%s %s is not writable: %w", what, abs, err)
	}
	f.Close()
	os.Remove(f.Name())
	return abs, nil
}

// checkExecutable finds the program now so that a typo fails Configure.
// A program name built from placeholders can only be checked per unit.
func checkExecutable(prog, workdir string) error {
	if strings.ContainsAny(prog, "{}") {
		return nil
	}
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("command %q: %w", prog, err)
		}
		return nil
	}
	path := prog
	if !filepath.IsAbs(path) && workdir != "" {
		path = filepath.Join(workdir, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("command %q: %w", prog, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("command %q: %s is not an executable file", prog, path)
	}
	return nil
}

// placeholderValues is the substitution table for one unit: the built-ins,
// then vars, then the target's config overrides of vars.
func placeholderValues(t sdk.Target, unit string, size, memPerThreadMB int64, vars, overrides map[string]string) map[string]string {
	m := map[string]string{
		"unit":    unit,
		"threads": fmt.Sprint(size),
		"heap":    fmt.Sprint(size * memPerThreadMB),
		"group":   t.Name,
		"target":  t.Name,
		"chain":   t.Chain,
	}
	for k, v := range vars {
		m[k] = v
	}
	for k, v := range overrides {
		if _, ok := vars[k]; ok {
			m[k] = v
		}
	}
	return m
}

// expand substitutes {name} placeholders. "{{" and "}}" stand for literal
// braces, and a brace that does not open a placeholder name is kept, so
// JSON-ish arguments mostly survive; an unknown name is an error because it
// is far more often a typo than intended text.
func expand(s string, vals map[string]string) (string, error) {
	var b strings.Builder
	var unknown []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			b.WriteByte('{')
			i += 2
		case strings.HasPrefix(s[i:], "}}"):
			b.WriteByte('}')
			i += 2
		case s[i] == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 || !placeholderName.MatchString(s[i+1:i+1+end]) {
				b.WriteByte('{')
				i++
				continue
			}
			name := s[i+1 : i+1+end]
			v, ok := vals[name]
			if !ok {
				unknown = append(unknown, "{"+name+"}")
			}
			b.WriteString(v)
			i += end + 2
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(vals))
		for k := range vals {
			names = append(names, "{"+k+"}")
		}
		slices.Sort(names)
		return "", fmt.Errorf("unknown placeholder %s (known: %s; add it to vars, or write {{ }} for literal braces)",
			strings.Join(unknown, ", "), strings.Join(names, " "))
	}
	return b.String(), nil
}
