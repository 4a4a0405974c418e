package ams

import (
	"strings"
	"testing"
	"time"
)

// The emulated optimizer takes the command lines Amoro's containers build
// (AbstractOptimizerContainer.buildOptimizerStartupArgsString) and refuses
// what the emulated version's optimizer refuses.
func TestParseOptimizerArgs(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		err        string
		check      func(t *testing.T, o OptimizerOptions)
	}{
		{name: "0.9 as realizer-k8s writes it", args: "-a http://127.0.0.1:19090 -p 4 -g g1 -st 900000 -id u1 -msm --poll 200ms",
			check: func(t *testing.T, o OptimizerOptions) {
				if o.BaseURL != "http://127.0.0.1:19090" || o.Threads != 4 || o.Group != "g1" || o.UnitID != "u1" ||
					o.ShutdownTimeout != 15*time.Minute || o.PollInterval != 200*time.Millisecond || o.MemoryMB != 1024 {
					t.Errorf("%+v", o)
				}
			}},
		{name: "heartbeat and memory, long names", args: "--ams-optimizing-uri=http://a:1 --execution-parallel 2 --group-name g -hb 1000 --memory-mb=512",
			check: func(t *testing.T, o OptimizerOptions) {
				if o.HeartbeatInterval != time.Second || o.MemoryMB != 512 || o.UnitID != "" {
					t.Errorf("%+v", o)
				}
			}},
		{name: "0.8 drops its tasks on SIGTERM", args: "--optimizer-version 0.8.1 -a http://a:1 -p 1 -g g -id u1",
			check: func(t *testing.T, o OptimizerOptions) {
				if o.ShutdownTimeout != time.Nanosecond {
					t.Errorf("0.8 shutdown timeout %v, want none", o.ShutdownTimeout)
				}
			}},
		{name: "0.8 has no -st", args: "--optimizer-version=0.8.1 -a http://a:1 -p 1 -g g -st 1000", err: `"-st" is not a valid option`},
		{name: "0.8 has no -msm", args: "--optimizer-version 0.8 -a http://a:1 -p 1 -g g -msm", err: `"-msm" is not a valid option`},
		{name: "old emulator flags are not the optimizer's", args: "-a http://a:1 -p 1 -g g --id u1", err: `"--id" is not a valid option`},
		{name: "required", args: "-a http://a:1 -p 1", err: `"-g (--group-name)" is required`},
		{name: "thrift", args: "-a thrift://ams:1261 -p 1 -g g", err: "over HTTP"},
		{name: "zero threads", args: "-a http://a:1 -p 0 -g g", err: "at least 1 thread"},
		{name: "bad poll", args: "-a http://a:1 -p 1 -g g --poll soon", err: `--poll "soon"`},
		{name: "bad version", args: "--optimizer-version nine -a http://a:1 -p 1 -g g", err: "--optimizer-version"},
		{name: "negative hb", args: "-a http://a:1 -p 1 -g g -hb -5", err: "-hb -5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := ParseOptimizerArgs(strings.Fields(tc.args))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}
