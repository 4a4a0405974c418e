package ams

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/internal/optargs"
)

// Emulator-only settings of an emulated optimizer's command line. They are
// "--" options no Amoro optimizer has, so a command line that works for the
// emulator with none of them works for the real optimizer of that version.
const (
	// FlagOptimizerVersion picks the Amoro version whose option set and
	// SIGTERM behaviour the emulated optimizer has (default: the newest).
	FlagOptimizerVersion = "--optimizer-version"
	// FlagPoll is the wait after an empty poll (AMS itself holds a poll).
	FlagPoll = "--poll"
	// FlagMemoryMB is the memory reported to AMS; the real optimizer
	// reports its JVM heap (optimizer.sh's -Xmx).
	FlagMemoryMB = "--memory-mb"
)

// ParseOptimizerArgs reads an emulated optimizer's command line: the
// arguments Amoro's StandaloneOptimizer takes (`-a <ams> -p <threads> -g
// <group> [-hb ms] [-st ms] [-id <unit>] [-msm] …`, parsed by optargs as
// args4j does for the chosen version, so an option that version lacks is
// an error), plus the emulator-only settings above. -a is the AMS
// emulator's base URL: it speaks the optimizer API as JSON over HTTP, not
// Thrift. Options without an emulated effect (disk spill, cache, -msm) are
// accepted and ignored.
func ParseOptimizerArgs(args []string) (OptimizerOptions, optargs.Version, error) {
	v := optargs.V09
	var rest []string
	for i := 0; i < len(args); i++ {
		name, val, inline := strings.Cut(args[i], "=")
		if name != FlagOptimizerVersion {
			rest = append(rest, args[i])
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				return OptimizerOptions{}, v, fmt.Errorf("%s takes a version", FlagOptimizerVersion)
			}
			i++
			val = args[i]
		}
		var err error
		if v, err = optargs.ParseVersion(val); err != nil {
			return OptimizerOptions{}, v, fmt.Errorf("%s: %w", FlagOptimizerVersion, err)
		}
	}

	o := OptimizerOptions{MemoryMB: 1024}
	var extraErr error
	extra := func(a []string) int {
		name, val, inline := strings.Cut(a[0], "=")
		if name != FlagPoll && name != FlagMemoryMB {
			return 0
		}
		n := 1
		if !inline {
			if len(a) < 2 {
				extraErr = fmt.Errorf("%s takes a value", name)
				return 1
			}
			val, n = a[1], 2
		}
		var err error
		switch name {
		case FlagPoll:
			o.PollInterval, err = time.ParseDuration(val)
		case FlagMemoryMB:
			o.MemoryMB, err = strconv.Atoi(val)
		}
		if err != nil && extraErr == nil {
			extraErr = fmt.Errorf("%s %q: %w", name, val, err)
		}
		return n
	}
	p, err := optargs.Parse(v, rest, extra)
	if err == nil {
		err = extraErr
	}
	if err != nil {
		return OptimizerOptions{}, v, fmt.Errorf("optimizer %s command line: %w", v, err)
	}

	o.BaseURL, _ = p.Get("-a")
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return OptimizerOptions{}, v, fmt.Errorf("-a %q: the emulated optimizer talks to the AMS emulator over HTTP: give its base URL, e.g. http://127.0.0.1:19090", o.BaseURL)
	}
	o.Group, _ = p.Get("-g")
	o.UnitID, _ = p.Get("-id")
	threads, _ := p.Get("-p")
	if o.Threads, err = strconv.Atoi(threads); err != nil || o.Threads < 1 {
		return OptimizerOptions{}, v, fmt.Errorf("-p %q: want at least 1 thread", threads)
	}
	ms := func(name string) (time.Duration, error) {
		s, ok := p.Get(name)
		if !ok {
			return 0, nil
		}
		n, _ := strconv.ParseInt(s, 10, 64) // optargs checked it is a long
		if n <= 0 || n > int64(24*time.Hour/time.Millisecond) {
			return 0, fmt.Errorf("%s %s: want a positive number of milliseconds up to a day", name, s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	var errs []error
	var e1, e2 error
	o.HeartbeatInterval, e1 = ms("-hb")
	o.ShutdownTimeout, e2 = ms("-st")
	errs = append(errs, e1, e2)
	if !v.GracefulShutdown() {
		// Before 0.9 SIGTERM ends the JVM at once (no shutdown hook): the
		// tasks it holds are abandoned, and AMS takes them back only when
		// the optimizer's heartbeat expires.
		o.ShutdownTimeout = time.Nanosecond
	}
	if o.MemoryMB < 0 {
		errs = append(errs, fmt.Errorf("%s %d: want a size in MB", FlagMemoryMB, o.MemoryMB))
	}
	if err := errors.Join(errs...); err != nil {
		return OptimizerOptions{}, v, err
	}
	return o, v, nil
}
