// Package optargs is Apache Amoro's standalone optimizer command line, per
// optimizer version: the options `OptimizerConfig` accepts (args4j rejects
// any other), how the version is told from an image tag, and which
// behaviours a version has. realizer-k8s builds its Deployments against it,
// the emulated optimizer (`ebb emulate optimizer`) parses its arguments with
// it, and tests check every command line ebb produces against it, so an
// option one version does not know is a failure here rather than an
// optimizer that prints usage and exits in production.
//
// Source: amoro-optimizer/amoro-optimizer-common/src/main/java/org/apache/
// amoro/optimizer/common/OptimizerConfig.java and the long names in
// amoro-common/src/main/java/org/apache/amoro/OptimizerProperties.java, at
// tags v0.8.1-incubating, v0.9.0-rc1 … rc4 and master 96a4d781a.
package optargs

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is an Amoro release, major.minor.patch. Pre-release tags
// (0.9.0-rc3) count as the release before them: a release candidate may
// lack what the release has (-st arrived in 0.9.0-rc4), so ebb assumes the
// older behaviour, which works on every version.
type Version struct{ Major, Minor, Patch int }

// Versions whose behaviour differs.
var (
	// V08 is 0.8.0-incubating: -a -p -g -hb -eds -dsp -msz -id.
	V08 = Version{0, 8, 0}
	// V09 is 0.9.0: adds the cache options, -msm, and -st with a shutdown
	// hook that lets in-flight tasks finish on SIGTERM (#4197; optimizer.sh
	// start-foreground execs the JVM from then on).
	V09 = Version{0, 9, 0}
)

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// AtLeast is !v.Less(o).
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// GracefulShutdown says whether the optimizer finishes its in-flight tasks on
// SIGTERM within -st. Before 0.9.0 the JVM has no shutdown hook, and in the
// image optimizer.sh does not exec it, so SIGTERM never reaches it.
func (v Version) GracefulShutdown() bool { return v.AtLeast(V09) }

// ParseVersion reads "0.8", "0.8.1", "v0.9.0", "0.8.1-incubating" or
// "0.9.0-rc3". A pre-release suffix (-rcN, -SNAPSHOT, …) makes it the
// release before; -incubating is a release.
func ParseVersion(s string) (Version, error) {
	orig := s
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	core, suffix, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("optimizer version %q: want MAJOR.MINOR[.PATCH], e.g. \"0.9\" or \"0.8.1\"", orig)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 1000 || p == "" || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("optimizer version %q: %q is not a version number", orig, p)
		}
		n[i] = v
	}
	v := Version{n[0], n[1], n[2]}
	if suffix != "" && !strings.HasPrefix(suffix, "incubating") {
		v = v.previous()
	}
	return v, nil
}

// previous is the newest release before v as far as behaviour goes: only
// the versions above matter, so 0.9.0-rc3 becomes 0.8.999.
func (v Version) previous() Version {
	switch {
	case v.Patch > 0:
		v.Patch--
	case v.Minor > 0:
		v.Minor, v.Patch = v.Minor-1, 999
	case v.Major > 0:
		v.Major, v.Minor, v.Patch = v.Major-1, 999, 999
	}
	return v
}

// FromImage reads the version from an image reference's tag: Amoro's
// images are tagged with the release ("apache/amoro:0.8.1-incubating",
// "apache/amoro:0.9.0"). ok is false for "latest", a digest, a branch name
// or no tag: the version cannot be known from the reference.
func FromImage(image string) (v Version, ok bool) {
	ref := image
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	slash := strings.LastIndexByte(ref, '/')
	colon := strings.LastIndexByte(ref, ':')
	if colon < 0 || colon < slash {
		return Version{}, false
	}
	v, err := ParseVersion(ref[colon+1:])
	return v, err == nil
}
