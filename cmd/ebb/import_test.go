package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/internal/amoro"
)

// amsResourceGroups serves the recorded resourceGroups body
// (testdata/ams_resource_groups.json) behind AMS's token check: a request
// whose signature is wrong gets what AMS answers, code 403 "Signature check
// failed" inside HTTP 200 (ApiTokenController.java, amoro.md §0).
func amsResourceGroups(t *testing.T, apiKey, secret string) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile("testdata/ams_resource_groups.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/ams/v1/optimize/resourceGroups" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"Not Found","code":404,"result":null}`))
			return
		}
		q := r.URL.Query()
		want, err := amoro.Signature(apiKey, secret, q, time.Now(), time.UTC)
		if err != nil || q.Get("apiKey") != apiKey || q.Get("signature") != want {
			w.Write([]byte(`{"message":"Signature check failed","code":403,"result":null}`))
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runEnv runs ebb with extra environment variables (secrets stay out of argv).
func (c *cli) runEnv(env []string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.ebb, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestImportAmoro: `ebb import amoro` reads a group's dynamic-allocation.*
// properties from AMS (token-signed, as collector-ams signs) and prints a
// policy block that `ebb validate` accepts in a real chain.
func TestImportAmoro(t *testing.T) {
	c := newCLI(t)
	srv := amsResourceGroups(t, "key1", "s3cret")
	secret := []string{"EBB_AMS_SECRET=s3cret"}
	out, errOut, code := c.runEnv(secret, "import", "amoro", "--url", srv.URL, "--group", "etl", "--auth-type", "token", "--api-key", "key1")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"policy {\n",
		"min-parallelism           = 4\n",
		"max-parallelism           = 32\n",
		"executor-parallelism      = 4\n",
		`executor-idle-timeout     = "10 minutes"`,
		`scheduler-backlog-timeout = "2min"`,
		`sustained-backlog-timeout = "20 s"`,
		`scale-up-cooldown         = "20 s"`,
		`scale-down-cooldown       = "90000ms"`,
		`drain-timeout             = "15min"`,
		`boot-timeout              = "3m"`,
		"# dynamic-allocation.enabled = true: no counterpart",
		"# dynamic-allocation.scale-up-cooldown: not a key of Amoro 0.9's dynamic allocation",
		"# auto-restart: no counterpart in AMS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("ebb import amoro printed:\n%s", out)
	// What it printed is a valid policy of a real chain.
	chain := c.config("")
	old := "  policy {\n    min-parallelism      = 2\n    max-parallelism      = 8\n    executor-parallelism = 1\n  }\n"
	if !strings.Contains(chain, old) {
		t.Fatalf("the CLI test config changed; update this test:\n%s", chain)
	}
	var block strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		block.WriteString("  " + l)
	}
	cfg := c.write("imported.hcl", strings.Replace(chain, old, block.String(), 1))
	if vo, ve, code := c.run("validate", cfg); code != 0 || !strings.Contains(vo, "valid (1 chain)") {
		t.Fatalf("ebb validate of the imported policy: exit %d\n%s%s\n%s", code, vo, ve, block.String())
	}

	// A wrong secret is AMS's 403, said plainly; the secret never appears.
	_, errOut, code = c.runEnv([]string{"EBB_AMS_SECRET=wrong-secret"}, "import", "amoro", "--url", srv.URL, "--group", "etl", "--auth-type", "token", "--api-key", "key1")
	if code != 1 || !strings.Contains(errOut, "code 403: Signature check failed") || strings.Contains(errOut, "wrong-secret") {
		t.Errorf("bad signature: exit %d: %s", code, errOut)
	}
	// An unknown group names the ones AMS has.
	_, errOut, code = c.runEnv(secret, "import", "amoro", "--url", srv.URL, "--group", "nope", "--auth-type", "token", "--api-key", "key1")
	if code != 1 || !strings.Contains(errOut, `no resource group "nope" (it has: default, etl)`) {
		t.Errorf("unknown group: exit %d: %s", code, errOut)
	}
	// A group without a ceiling cannot be imported.
	_, errOut, code = c.runEnv(secret, "import", "amoro", "--url", srv.URL, "--group", "default", "--auth-type", "token", "--api-key", "key1")
	if code != 1 || !strings.Contains(errOut, "dynamic-allocation.max-parallelism is not set") {
		t.Errorf("no ceiling: exit %d: %s", code, errOut)
	}
}

// TestImportAmoroFromEmulator: the same against the AMS emulator's
// resourceGroups endpoint and its token check.
func TestImportAmoroFromEmulator(t *testing.T) {
	c := newCLI(t)
	e, err := ams.New(ams.Options{
		Auth: ams.Auth{Type: ams.AuthToken, APIKey: "k", Secret: "s"},
		Groups: []ams.GroupConfig{{Name: "g1", Container: "flink", Properties: map[string]string{
			"dynamic-allocation.enabled": "true", "dynamic-allocation.max-parallelism": "12",
			"dynamic-allocation.executor-parallelism": "3", "dynamic-allocation.min-parallelism": "3",
			"dynamic-allocation.executor-idle-timeout": "1min", "dynamic-allocation.sustained-backlog-timeout": "30s",
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	out, errOut, code := c.runEnv([]string{"EBB_AMS_SECRET=s"}, "import", "amoro", "--url", srv.URL, "--group", "g1", "--auth-type", "token", "--api-key", "k")
	if code != 0 || !strings.Contains(out, "max-parallelism           = 12") || !strings.Contains(out, `executor-idle-timeout     = "1min"`) {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	old := "  policy {\n    min-parallelism      = 2\n    max-parallelism      = 8\n    executor-parallelism = 1\n  }\n"
	cfg := c.write("emulated.hcl", strings.Replace(c.config(""), old, out, 1))
	if vo, ve, code := c.run("validate", cfg); code != 0 {
		t.Fatalf("ebb validate of the imported policy: exit %d\n%s%s", code, vo, ve)
	}
}
