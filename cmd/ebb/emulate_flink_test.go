package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEmulateFlinkAndPlan runs `ebb emulate flink` as a user would and plans
// against it with the builtin realizer-flink: the default job runs, and the
// plan's inventory lists its subtasks.
func TestEmulateFlinkAndPlan(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "emulate", "flink", "--addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/v1/overview")

	cfg := c.write("flink.hcl", fmt.Sprintf(`
plugin_dir = %q
collector "demand" {
  plugin = "test-collector"
  config {
    file = %q
  }
}
evaluator "dra" {
  plugin = "evaluator-dra"
}
realizer "flink" {
  plugin = "realizer-flink"
  config {
    mode     = "job"
    rest-url = "http://%s"
  }
}
chain "stream" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.flink
  target     = "ebb-demo"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 1
  }
}`, c.pluginDir, c.snap, addr))
	out, errOut, code := c.run("plan", cfg, "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var got struct {
		Evaluations []struct {
			Inventory []struct {
				ID    string
				Phase string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var ids []string
	for _, u := range got.Evaluations[0].Inventory {
		ids = append(ids, u.ID)
	}
	if strings.Join(ids, ",") != "subtask-0,subtask-1" {
		t.Fatalf("inventory %v, want the demo job's two subtasks", ids)
	}
}

// TestEmulateFlinkRunsOptimizers: a FlinkOptimizer job submitted to `ebb
// emulate flink --ams` registers an optimizer with `ebb emulate ams` under
// its unit id, and a cancelled job's optimizer leaves.
func TestEmulateFlinkRunsOptimizers(t *testing.T) {
	c := newCLI(t)
	amsAddr, metricsAddr, flinkAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	for _, args := range [][]string{
		{"emulate", "ams", "--addr", amsAddr, "--metrics-addr", metricsAddr, "--heartbeat-timeout", "3s"},
		{"emulate", "flink", "--addr", flinkAddr, "--ams", "http://" + amsAddr, "--demo-job=false"},
	} {
		cmd := exec.Command(c.ebb, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	waitHTTP(t, "http://"+metricsAddr+"/metrics")
	waitHTTP(t, "http://"+flinkAddr+"/v1/overview")

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("jarfile", "optimizer-job.jar")
	part.Write([]byte("PK"))
	mw.Close()
	resp, err := http.Post("http://"+flinkAddr+"/v1/jars/upload", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ Filename string }
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	jar := up.Filename[strings.LastIndex(up.Filename, "/")+1:]
	run := `{"entryClass":"org.apache.amoro.optimizer.flink.FlinkOptimizer","programArgsList":["-a","thrift://ams:1261","-p","2","-g","default","-id","u9"]}`
	resp, err = http.Post("http://"+flinkAddr+"/v1/jars/"+jar+"/run", "application/json", strings.NewReader(run))
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ JobID string }
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if job.JobID == "" {
		t.Fatalf("jar run returned %d", resp.StatusCode)
	}
	optimizers := func() string {
		resp, err := http.Get("http://" + amsAddr + "/api/ams/v1/optimize/optimizerGroups/default/optimizers?page=1&pageSize=10")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(optimizers(), `"u9"`) {
		if time.Now().After(deadline) {
			t.Fatalf("optimizer u9 never registered: %s", optimizers())
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPatch, "http://"+flinkAddr+"/v1/jobs/"+job.JobID+"?mode=cancel", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %v %v", resp, err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for strings.Contains(optimizers(), `"u9"`) {
		if time.Now().After(deadline) {
			t.Fatalf("optimizer u9 still registered after its job was cancelled: %s", optimizers())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
