package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A unit started through "#!/usr/bin/env bash" execs twice on its way in
// and exits at once: read at any moment of that, it is alive, exiting or
// gone, never "another command" (which made its chain start it again).
func TestLivenessThroughExec(t *testing.T) {
	script := filepath.Join(t.TempDir(), "unit.sh")
	if err := os.WriteFile(script, []byte("#!/usr/bin/env bash\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		cmd := exec.Command(script, "-a", "x")
		cmd.Env = append(os.Environ(), tokenEnv+"=tok")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		st, err := readStat(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		rec := &record{Pid: cmd.Process.Pid, ProcStart: st.StartTicks, Argv: []string{script, "-a", "x"}, Token: "tok"}
		for n := 0; ; n++ {
			alive, why := liveness(rec)
			if alive && n < 1e6 {
				continue
			}
			if alive {
				t.Fatalf("start %d: a unit that exits at once still alive after %d looks", i, n)
			}
			if why == otherCommand {
				t.Fatalf("start %d: a unit still exec'ing or exiting was judged to run another command", i)
			}
			break
		}
		_ = cmd.Wait()
	}
}
