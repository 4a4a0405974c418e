package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestValidatePolicyChecks: every check of Amoro's
// DynamicAllocationConfig.validate is an `ebb validate` error at the
// FILE:LINE:COL of the attribute at fault, and a missing ceiling is an
// error at the policy block.
func TestValidatePolicyChecks(t *testing.T) {
	c := newCLI(t)
	old := "  policy {\n    min-parallelism      = 2\n    max-parallelism      = 8\n    executor-parallelism = 1\n  }\n"
	cases := []struct {
		name, policy, attr, msg string
	}{
		{"floor unreachable in whole units", `min-parallelism = 5
    max-parallelism = 6
    executor-parallelism = 4`, "min-parallelism", "the floor could never be reached in whole units"},
		{"unit above the ceiling", `max-parallelism = 4
    executor-parallelism = 8`, "executor-parallelism", "not even one full unit fits"},
		{"idle timeout below 30s", `max-parallelism = 8
    executor-idle-timeout = "10s"`, "executor-idle-timeout", "must be at least 30s"},
		{"sustained above half the idle timeout", `max-parallelism = 8
    executor-idle-timeout = "1 min"
    sustained-backlog-timeout = "31s"`, "sustained-backlog-timeout", "more than half of executor-idle-timeout 1m"},
		{"zero cooldown", `max-parallelism = 8
    scale-down-cooldown = "0s"`, "scale-down-cooldown", "must be positive"},
		{"zero drain timeout in Amoro's syntax", `max-parallelism = 8
    drain-timeout = "0 min"`, "drain-timeout", "must be positive"},
		{"no ceiling", `min-parallelism = 2`, "", `The argument "max-parallelism" is required`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(c.config(""), old, "  policy {\n    "+tc.policy+"\n  }\n", 1)
			path := c.write(fmt.Sprintf("bad%d.hcl", i), text)
			// The line the error must point at: the attribute, or the policy block.
			needle := "  policy {"
			if tc.attr != "" {
				needle = "    " + tc.attr + " "
			}
			line := 0
			for n, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, needle) {
					line = n + 1
				}
			}
			_, errOut, code := c.run("validate", path)
			want := fmt.Sprintf("%s:%d:", path, line)
			if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, want an error at %s saying %q:\n%s", code, want, tc.msg, errOut)
			}
		})
	}
	// Amoro's own syntax and defaults pass.
	good := strings.Replace(c.config(""), old, `  policy {
    min-parallelism           = 4
    max-parallelism           = 16
    executor-parallelism      = 4
    scheduler-backlog-timeout = "1min"
    executor-idle-timeout     = "5 minutes"
    drain-timeout             = "15 min"
  }
`, 1)
	if out, errOut, code := c.run("validate", c.write("good.hcl", good)); code != 0 {
		t.Fatalf("Amoro-syntax policy: exit %d\n%s%s", code, out, errOut)
	}
}
