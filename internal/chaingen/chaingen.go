// Package chaingen writes configurations of many chains, for the tests and
// benchmarks that measure loading them: N chains share one collector, one
// evaluator and one realizer block, with K distinct policies among them.
package chaingen

import (
	"fmt"
	"strings"
)

// Spec says what to generate.
type Spec struct {
	// Chains is how many chain blocks to write.
	Chains int
	// Policies is how many distinct policies the chains cycle through
	// (max-parallelism 4, 8, 12, ...); 0 means one.
	Policies int
	// Head is written first: plugin_dir, state, http, and the plugin
	// blocks named "ams" (collector), "dra" (evaluator) and "proc"
	// (realizer). Empty: Builtins.
	Head string
	// Interval is each chain's interval; empty means "10s".
	Interval string
	// Bad, when set, makes every Bad-th chain's policy invalid
	// (min-parallelism above max-parallelism), starting with chain 0.
	Bad int
}

// Builtins is a head of ebb's builtin plugins that never reaches a
// platform at load: collector-ams, evaluator-dra and realizer-process.
const Builtins = `collector "ams" {
  plugin  = "collector-ams"
  timeout = "10s"
  config {
    url = "http://127.0.0.1:1"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "proc" {
  plugin = "realizer-process"
  config {
    command   = ["/bin/true", "{unit}"]
    state-dir = "units"
  }
}
`

// Config returns the configuration's source.
func Config(s Spec) []byte {
	head, interval, k := s.Head, s.Interval, max(s.Policies, 1)
	if head == "" {
		head = Builtins
	}
	if interval == "" {
		interval = "10s"
	}
	var b strings.Builder
	b.Grow(len(head) + s.Chains*260)
	b.WriteString(head)
	for i := range s.Chains {
		maxPar := (i%k + 1) * 4
		minPar := 0
		if s.Bad > 0 && i%s.Bad == 0 {
			minPar = maxPar + 4
		}
		fmt.Fprintf(&b, `
chain "c%d" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.proc
  target     = "g%d"
  interval   = %q
  policy {
    min-parallelism      = %d
    max-parallelism      = %d
    executor-parallelism = 4
  }
}
`, i, i, interval, minPar, maxPar)
	}
	return []byte(b.String())
}

// ChainLine is the line of chain i's block header in Config's output, for
// tests that check a diagnostic points at it.
func ChainLine(s Spec, i int) int {
	head := s.Head
	if head == "" {
		head = Builtins
	}
	return strings.Count(head, "\n") + 2 + i*13
}
