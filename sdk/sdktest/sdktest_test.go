package sdktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// recorder is an evaluator that remembers what it was given.
type recorder struct {
	mu       sync.Mutex
	config   string
	policies []string
}

func (r *recorder) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "recorder", Kind: sdk.KindEvaluator, Version: "1", ProtocolVersion: sdk.ProtocolVersion,
		ConfigSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "zone", Type: sdk.TypeString, Default: "UTC"},
			{Name: "written", Type: sdk.TypeNumber, Default: 1},
		}},
		PolicySchema: sdk.Schema{
			Attributes: []sdk.Attribute{{Name: "wait", Type: sdk.TypeDuration, Default: "90s"}},
			Blocks: []sdk.Block{{Name: "inner", Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "hours", Type: sdk.TypeListString, Default: []string{"22", "23"}},
				{Name: "max", Type: sdk.TypeNumber, Default: 5e6},
			}}}},
		}}, nil
}

func (r *recorder) Configure(_ context.Context, c json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = string(c)
	return nil
}

func (r *recorder) record(p json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies = append(r.policies, string(p))
}

func (r *recorder) ValidatePolicy(_ context.Context, p json.RawMessage) ([]sdk.PolicyProblem, error) {
	r.record(p)
	return nil, nil
}

func (r *recorder) Evaluate(_ context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	r.record(req.Policy)
	return sdk.EvaluateResponse{}, nil
}

// The plugin sees its schema's defaults filled in, as the runner sends them:
// durations as strings, integers without exponents, nested blocks as objects.
func TestConformanceFillsDefaults(t *testing.T) {
	r := &recorder{}
	sdktest.Conformance(t, sdktest.InProcess(t, r), sdktest.Case{
		Config:   json.RawMessage(`{"written": 7}`),
		Requests: []sdk.EvaluateRequest{{Snapshot: sdk.Snapshot{Complete: true}}, {Policy: json.RawMessage(`{"wait": "1s"}`)}},
	})
	if want := `{"written":7,"zone":"UTC"}`; r.config != want {
		t.Errorf("Configure got %s, want %s", r.config, want)
	}
	// ValidatePolicy, then each request four times (twice for purity,
	// once with the state it returned, once told its decision was vetoed).
	full := `{"inner":{"hours":["22","23"],"max":5000000},"wait":"90s"}`
	short := `{"inner":{"hours":["22","23"],"max":5000000},"wait":"1s"}`
	want := []string{full, full, full, full, full, short, short, short, short}
	if got := r.policies; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("policies seen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A test process that builds plugins leaves no temporary directory behind,
// however it ends.
func TestBuildLeavesNothingBehind(t *testing.T) {
	if os.Getenv("SDKTEST_HELPER") != "" {
		bin := sdktest.Build(t, "github.com/ebbscale/ebb/sdk/sdktest/testdata/noop")
		fmt.Println("built", bin)
		if os.Getenv("SDKTEST_HELPER") == "fail" {
			t.Fatal("failing on purpose")
		}
		return
	}
	for _, mode := range []string{"pass", "fail"} {
		t.Run(mode, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuildLeavesNothingBehind$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SDKTEST_HELPER="+mode, "TMPDIR="+tmp)
			out, err := cmd.CombinedOutput()
			if (err != nil) != (mode == "fail") {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var bin string
			for _, line := range strings.Split(string(out), "\n") {
				if b, ok := strings.CutPrefix(line, "built "); ok {
					bin = b
				}
			}
			if !strings.HasPrefix(bin, tmp) {
				t.Fatalf("helper built %q, not under its TMPDIR %s:\n%s", bin, tmp, out)
			}
			// The cleanup runs once the process is gone; give it a moment.
			deadline := time.Now().Add(30 * time.Second)
			for {
				left, _ := filepath.Glob(filepath.Join(tmp, "ebb-sdktest-*"))
				if len(left) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("left behind: %v", left)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
