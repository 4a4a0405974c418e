package optargs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Kind is the Java type of an option's field, which decides how args4j
// reads its value.
type Kind int

const (
	// String takes the next argument as it is.
	String Kind = iota
	// Int and Long take the next argument as a decimal number.
	Int
	Long
	// Bool is a flag: present means true, and it takes no argument
	// (args4j's BooleanOptionHandler for a non-argument option).
	Bool
)

// Option is one @Option of OptimizerConfig.
type Option struct {
	Name     string // "-a"
	Alias    string // "--ams-optimizing-uri", from OptimizerProperties
	Kind     Kind
	Required bool
	Since    Version
}

// options lists OptimizerConfig's fields in source order. memorySize has no
// @Option: the heap is optimizer.sh's second argument (-Xmx), not a flag.
var options = []Option{
	{Name: "-a", Alias: "--ams-optimizing-uri", Kind: String, Required: true, Since: V08},
	{Name: "-p", Alias: "--execution-parallel", Kind: Int, Required: true, Since: V08},
	{Name: "-g", Alias: "--group-name", Kind: String, Required: true, Since: V08},
	{Name: "-hb", Alias: "--heart-beat-interval", Kind: Long, Since: V08},
	{Name: "-eds", Alias: "--extend-disk-storage", Kind: Bool, Since: V08},
	{Name: "-dsp", Alias: "--disk-storage-path", Kind: String, Since: V08},
	{Name: "-msz", Alias: "--memory-storage-size", Kind: Long, Since: V08},
	{Name: "-id", Alias: "--resource-id", Kind: String, Since: V08},
	// 0.9.0-rc1 added the cache and master-slave options; -st came with the
	// shutdown hook in 0.9.0-rc4.
	{Name: "-ce", Alias: "--cache-enabled", Kind: Bool, Since: V09},
	{Name: "-cmts", Alias: "--cache-max-total-size", Kind: String, Since: V09},
	{Name: "-cmes", Alias: "--cache-max-entry-size", Kind: String, Since: V09},
	{Name: "-ct", Alias: "--cache-timeout", Kind: String, Since: V09},
	{Name: "-msm", Alias: "--master-slave-mode-enabled", Kind: Bool, Since: V09},
	{Name: "-st", Alias: "--shutdown-timeout-ms", Kind: Long, Since: V09},
}

// Options returns the options version v accepts.
func Options(v Version) []Option {
	var out []Option
	for _, o := range options {
		if v.AtLeast(o.Since) {
			out = append(out, o)
		}
	}
	return out
}

// Accepts says whether version v knows the option name (short or long).
func Accepts(v Version, name string) bool {
	_, ok := lookup(v, name)
	return ok
}

func lookup(v Version, name string) (Option, bool) {
	for _, o := range Options(v) {
		if name == o.Name || name == o.Alias {
			return o, true
		}
	}
	return Option{}, false
}

// Parsed is a command line accepted by one version: values by short name
// ("true" for a flag that is present), and what is left over when Parse was
// allowed to leave unknown "--" options to its caller.
type Parsed struct {
	Values map[string]string
	Rest   []string
}

// Get returns an option's value by short name.
func (p Parsed) Get(name string) (string, bool) {
	v, ok := p.Values[name]
	return v, ok
}

// Parse reads args the way args4j's CmdLineParser does with
// OptimizerConfig: options by short or long name, each valued option
// followed by its value (or written name=value), flags alone; a repeated
// option takes its last value; an unknown option, a bare argument, a
// missing value, a value that is not a number for a numeric field, or a
// missing required option is an error (the optimizer prints usage and
// exits). The messages follow args4j's, lower-cased.
//
// extra, when not nil, is offered every argument starting with "--" that
// the version does not know; it returns how many arguments it consumed
// (the option and its value), or 0 to reject it. The emulated optimizer
// uses it for its own settings, which real optimizers do not have.
func Parse(v Version, args []string, extra func(args []string) int) (Parsed, error) {
	p := Parsed{Values: map[string]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, inline, hasInline := arg, "", false
		if strings.HasPrefix(arg, "-") {
			if n, val, ok := strings.Cut(arg, "="); ok {
				name, inline, hasInline = n, val, true
			}
		}
		o, ok := lookup(v, name)
		if !ok {
			if strings.HasPrefix(arg, "--") && extra != nil {
				if n := extra(args[i:]); n > 0 {
					p.Rest = append(p.Rest, args[i:i+n]...)
					i += n - 1
					continue
				}
			}
			if strings.HasPrefix(arg, "-") {
				return Parsed{}, fmt.Errorf("%q is not a valid option (Amoro optimizer %s; it knows %s)", name, v, knownNames(v))
			}
			return Parsed{}, fmt.Errorf("no argument is allowed: %s", arg)
		}
		var val string
		switch {
		case o.Kind == Bool:
			if hasInline {
				return Parsed{}, fmt.Errorf("option %q is a flag and takes no value, got %q", o.Name, arg)
			}
			val = "true"
		case hasInline:
			val = inline
		case i+1 < len(args):
			i++
			val = args[i]
		default:
			return Parsed{}, fmt.Errorf("option %q takes an operand", o.display())
		}
		switch o.Kind {
		case Int:
			if _, err := strconv.ParseInt(val, 10, 32); err != nil {
				return Parsed{}, fmt.Errorf("%q is not a valid value for %q", val, o.display())
			}
		case Long:
			if _, err := strconv.ParseInt(val, 10, 64); err != nil {
				return Parsed{}, fmt.Errorf("%q is not a valid value for %q", val, o.display())
			}
		}
		p.Values[o.Name] = val
	}
	for _, o := range Options(v) {
		if _, ok := p.Values[o.Name]; o.Required && !ok {
			return Parsed{}, fmt.Errorf("option %q is required", o.display())
		}
	}
	return p, nil
}

func (o Option) display() string { return o.Name + " (" + o.Alias + ")" }

func knownNames(v Version) string {
	var names []string
	for _, o := range Options(v) {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
