package config

import (
	"fmt"
	"testing"

	"github.com/ebbscale/ebb/internal/chaingen"
)

// fakeHead is chaingen's head over the fake resolver's plugins.
const fakeHead = `collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams:19090"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "proc" {
  plugin = "realizer-process"
  config {
    command = ["/bin/true"]
  }
}
`

// BenchmarkParse is the loader's own cost (HCL, schemas, the one-writer and
// policy checks) without plugin processes: it must stay linear in chains.
//
//	go test -run XXX -bench BenchmarkParse -benchtime 3x ./core/config/
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		src := chaingen.Config(chaingen.Spec{Chains: n, Policies: 4, Head: fakeHead})
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, diags := Parse(src, "gen.hcl", nil, newFakeResolver()); diags.HasErrors() {
					b.Fatal(FormatDiagnostics(diags))
				}
			}
		})
	}
}
