package flink

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, opts Options) (*Emulator, string) {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(func() { srv.Close(); e.Close() })
	return e, srv.URL
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode, out
}

func errorText(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	var s []string
	for _, e := range errs {
		s = append(s, e.(string))
	}
	return strings.Join(s, " | ")
}

const demo = "3b2e0f6d1c2a4e5f8a9b0c1d2e3f4a5b"

func TestRESTContract(t *testing.T) {
	e, url := serve(t, Options{Jobs: []JobSpec{DemoJob()}})
	for _, p := range []string{"/config", "/v1/config", "/overview", "/taskmanagers", "/jobs", "/jobs/overview", "/v1/jobs/" + demo, "/jobs/" + demo + "/config"} {
		if code, _ := call(t, "GET", url+p, ""); code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	code, ov := call(t, "GET", url+"/overview", "")
	if code != 200 || ov["slots-total"].(float64) != 8 || ov["slots-available"].(float64) != 6 || ov["jobs-running"].(float64) != 1 {
		t.Fatalf("overview %v", ov)
	}
	code, job := call(t, "GET", url+"/jobs/"+demo, "")
	vs := job["vertices"].([]any)
	if len(vs) != 2 || vs[1].(map[string]any)["maxParallelism"].(float64) != 120 {
		t.Fatalf("job details %v", job)
	}
	vid := vs[1].(map[string]any)["id"].(string)
	if code, v := call(t, "GET", url+"/jobs/"+demo+"/vertices/"+vid, ""); code != 200 || len(v["subtasks"].([]any)) != 2 {
		t.Fatalf("vertex %d %v", code, v)
	}

	// Flink's error bodies.
	cases := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/nope", "", 404, "Not found: /nope"},
		{"GET", "/jobs/xyz", "", 400, "Cannot resolve path parameter (jobid)"},
		{"GET", "/jobs/00000000000000000000000000000000", "", 404, "NotFoundException: Job 00000000000000000000000000000000 not found"},
		{"GET", "/jobs/00000000000000000000000000000000/resource-requirements", "", 500, "FlinkJobNotFoundException"},
		{"PUT", "/jobs/" + demo + "/resource-requirements", "{", 400, "Request did not match expected format JobResourceRequirementsBody."},
		{"PUT", "/jobs/" + demo + "/resource-requirements", "{}", 400, "Request body does not specify resource requirements."},
		{"PUT", "/jobs/" + demo + "/resource-requirements", `{"` + vid + `":{"parallelism":{"lowerBound":1,"upperBound":121}}}`, 400, "exceeds the max parallelism 120"},
		{"PATCH", "/jobs/" + demo + "?mode=stop", "", 308, `use "jobs/:jobId/stop"`},
		{"DELETE", "/jobs/" + demo, "", 404, "Not found"},
	}
	for _, c := range cases {
		code, out := call(t, c.method, url+c.path, c.body)
		if code != c.code || !strings.Contains(errorText(out), c.want) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, code, errorText(out), c.code, c.want)
		}
	}

	// A rescale: bounds declared, the job restarts at the new parallelism.
	code, _ = call(t, "PUT", url+"/jobs/"+demo+"/resource-requirements", `{"`+vid+`":{"parallelism":{"lowerBound":1,"upperBound":5}}}`)
	if code != 200 || e.Jobs()[0].Parallelism["KeyedProcess -> Sink: totals"] != 5 || e.Jobs()[0].Rescales != 1 {
		t.Fatalf("rescale: %d %+v", code, e.Jobs())
	}
	e.ConflictNextUpdates(demo, 1)
	if code, out := call(t, "PUT", url+"/jobs/"+demo+"/resource-requirements", `{"`+vid+`":{"parallelism":{"lowerBound":1,"upperBound":3}}}`); code != 409 || !strings.Contains(errorText(out), "in progress") {
		t.Fatalf("concurrent update: %d %v", code, out)
	}

	// Stop-with-savepoint without a directory fails; cancel ends the job.
	_, trig := call(t, "POST", url+"/jobs/"+demo+"/stop", `{"drain":false}`)
	_, st := call(t, "GET", url+"/jobs/"+demo+"/savepoints/"+trig["request-id"].(string), "")
	if !strings.Contains(st["operation"].(map[string]any)["failure-cause"].(map[string]any)["stack-trace"].(string), "No savepoint directory") {
		t.Fatalf("stop without a directory: %v", st)
	}
	if code, _ := call(t, "PATCH", url+"/jobs/"+demo+"?mode=cancel", ""); code != 202 || e.Jobs()[0].State != StateCanceled {
		t.Fatalf("cancel: %d %+v", code, e.Jobs())
	}
}

func TestSchedulerAndVersionRules(t *testing.T) {
	j := DemoJob()
	j.Config = nil
	_, url := serve(t, Options{Jobs: []JobSpec{j}})
	code, out := call(t, "GET", url+"/jobs/"+demo+"/resource-requirements", "")
	if code != 500 || !strings.Contains(errorText(out), "The DefaultScheduler does not support changing the parallelism") {
		t.Fatalf("default scheduler: %d %v", code, out)
	}
	_, old := serve(t, Options{Version: "1.17.2", Jobs: []JobSpec{DemoJob()}})
	if code, out := call(t, "GET", old+"/jobs/"+demo+"/resource-requirements", ""); code != 404 || !strings.HasPrefix(errorText(out), "Not found") {
		t.Fatalf("Flink 1.17: %d %v", code, out)
	}
}

func TestJarUploadAndRun(t *testing.T) {
	e, url := serve(t, Options{Programs: map[string]Program{AmoroOptimizerClass: AmoroOptimizer(nil)}})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part, _ := mw.CreateFormFile("jarfile", "optimizer-job.jar")
	part.Write([]byte("PK"))
	mw.Close()
	resp, err := http.Post(url+"/jars/upload", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	var up map[string]string
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	jarID := up["filename"][strings.LastIndex(up["filename"], "/")+1:]
	if up["status"] != "success" || !strings.HasSuffix(jarID, "_optimizer-job.jar") {
		t.Fatalf("upload %v", up)
	}
	body := `{"entryClass":"` + AmoroOptimizerClass + `","programArgsList":["-a","thrift://ams:1261","-p","3","-g","g","-id","u1"],"jobId":"0123456789abcdef0123456789abcdef",
	  "flinkConfiguration":{"pipeline.global-job-parameters":"ebb.unit:u1,ebb.group:g"}}`
	code, out := call(t, "POST", url+"/jars/"+jarID+"/run", body)
	if code != 200 || out["jobid"] != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("run %d %v", code, out)
	}
	if code, out := call(t, "POST", url+"/jars/"+jarID+"/run", body); code != 500 || !strings.Contains(errorText(out), "DuplicateJobSubmissionException") {
		t.Fatalf("duplicate run %d %v", code, out)
	}
	if code, out := call(t, "POST", url+"/jars/"+jarID+"/run", `{"entryClass":"com.example.Nope"}`); code != 500 || !strings.Contains(errorText(out), "ClassNotFoundException") {
		t.Fatalf("unknown class %d %v", code, out)
	}
	_, cfg := call(t, "GET", url+"/jobs/0123456789abcdef0123456789abcdef/config", "")
	user := cfg["execution-config"].(map[string]any)["user-config"].(map[string]any)
	if user["ebb.unit"] != "u1" || e.Jobs()[0].Parallelism["org.apache.amoro.optimizer.flink.FlinkExecutor"] != 3 {
		t.Fatalf("job config %v, jobs %+v", cfg, e.Jobs())
	}
}
