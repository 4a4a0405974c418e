package flink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
)

// Resource requirements (FLIP-291, FLINK-31469): the body of both GET and
// PUT /jobs/:jobid/resource-requirements is JobResourceRequirementsBody, a map
// from vertex id to {"parallelism":{"lowerBound":l,"upperBound":u}}
// (flink-runtime/.../jobgraph/JobVertexResourceRequirements.java).
type requirementsBody map[string]struct {
	Parallelism *struct {
		LowerBound *int `json:"lowerBound"`
		UpperBound *int `json:"upperBound"`
	} `json:"parallelism"`
}

const (
	requirementsHandler = "org.apache.flink.runtime.rest.handler.job.JobResourceRequirementsHandler"
	updateHandler       = "org.apache.flink.runtime.rest.handler.job.JobResourceRequirementsUpdateHandler"
)

// notAdaptive is SchedulerNG's default requestJobResourceRequirements: an
// UnsupportedOperationException the handler passes through as a 500.
func notAdaptive(handler string) *restError {
	return &restError{status: http.StatusInternalServerError, internal: true, handler: handler,
		exception: "java.lang.UnsupportedOperationException",
		message:   "The DefaultScheduler does not support changing the parallelism without a job restart. This feature is currently only expected to work with the AdaptiveScheduler."}
}

func (e *Emulator) getRequirements(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], requirementsHandler, gatewayJobNotFound)
	if j == nil {
		return
	}
	if !j.adaptive() {
		writeError(w, notAdaptive(requirementsHandler))
		return
	}
	out := map[string]any{}
	for id, b := range j.requirements {
		out[id] = map[string]any{"parallelism": map[string]int{"lowerBound": b.lower, "upperBound": b.upper}}
	}
	writeJSON(w, http.StatusOK, out)
}

// putRequirements follows JobResourceRequirementsUpdateHandler and
// Dispatcher.updateJobResourceRequirements: 400 for a body without
// requirements or bounds beyond a vertex's max parallelism, 409 while another
// update of the job is in progress, then the scheduler takes the new bounds.
func (e *Emulator) putRequirements(w http.ResponseWriter, r *http.Request, seg []string) {
	var body requirementsBody
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		writeError(w, badBody("JobResourceRequirementsBody"))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], updateHandler, gatewayJobNotFound)
	if j == nil {
		return
	}
	if len(body) == 0 {
		writeError(w, badRequest(updateHandler, "Request body does not specify resource requirements."))
		return
	}
	// Flink builds this RestHandlerException without formatting it, so the
	// real message carries a literal "[%s]".
	if e.updating[j.id] > 0 {
		e.updating[j.id]--
		writeError(w, &restError{status: http.StatusConflict, handler: "org.apache.flink.runtime.dispatcher.Dispatcher",
			message: "Another update to the job [%s] resource requirements is in progress."})
		return
	}
	if !j.adaptive() {
		writeError(w, notAdaptive(updateHandler))
		return
	}
	maxP := map[string]int{}
	for _, v := range j.vertices {
		maxP[v.id] = v.maxParallelism
	}
	req := map[string]bounds{}
	var problems []string
	for _, id := range sortedKeys(body) {
		p := body[id].Parallelism
		if p == nil || p.LowerBound == nil || p.UpperBound == nil {
			writeError(w, badBody("JobResourceRequirementsBody"))
			return
		}
		b := bounds{lower: *p.LowerBound, upper: *p.UpperBound}
		mp, known := maxP[strings.ToLower(id)]
		switch {
		case b.lower < 1 || b.lower > b.upper:
			writeError(w, badBody("JobResourceRequirementsBody"))
			return
		case !known:
			problems = append(problems, fmt.Sprintf("Job vertex %s was not found.", id))
		case b.upper > mp:
			problems = append(problems, fmt.Sprintf("Can't set the upper bound of parallelism for vertex %s to %d, because it exceeds the max parallelism %d.", id, b.upper, mp))
		}
		req[strings.ToLower(id)] = b
	}
	if len(problems) > 0 {
		writeError(w, badRequest("org.apache.flink.runtime.dispatcher.Dispatcher.validateMaxParallelism", "%s", strings.Join(problems, "\n")))
		return
	}
	// Vertices missing from the body keep their bounds: JobResourceRequirements
	// must name every vertex in Flink; the emulator is lenient only here and
	// says so in README.
	for id, b := range j.requirements {
		if _, ok := req[id]; !ok {
			req[id] = b
		}
	}
	e.applyRequirementsLocked(j, req)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// ConflictNextUpdates makes the next n resource requirements PUTs of a job
// answer 409, as a concurrent update does in Flink; tests use it.
func (e *Emulator) ConflictNextUpdates(jobID string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.updating[jobID] = n
}

// JarUploadHandler: POST /jars/upload, multipart with the jar as "jarfile".
func (e *Emulator) postJar(w http.ResponseWriter, r *http.Request, _ []string) {
	const handler = "org.apache.flink.runtime.webmonitor.handlers.JarUploadHandler"
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		writeError(w, badRequest(handler, "Exactly 1 file must be sent, received 0."))
		return
	}
	f, hdr, err := r.FormFile("jarfile")
	if err != nil {
		writeError(w, badRequest(handler, "Exactly 1 file must be sent, received 0."))
		return
	}
	f.Close()
	name := path.Base(hdr.Filename)
	if !strings.HasSuffix(name, ".jar") {
		writeError(w, badRequest(handler, "Only Jar files are allowed."))
		return
	}
	id := newID()[:8] + "-" + newID()[:4] + "_" + name
	e.mu.Lock()
	e.jars[id] = &jar{id: id, name: name, uploaded: e.opts.Clock()}
	e.jarOrder = append(e.jarOrder, id)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"filename": "/tmp/flink-web-emulated/flink-web-upload/" + id, "status": "success"})
}

// JarListHandler: GET /jars.
func (e *Emulator) getJars(w http.ResponseWriter, r *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	files := []map[string]any{}
	for _, id := range e.jarOrder {
		j := e.jars[id]
		files = append(files, map[string]any{"id": j.id, "name": j.name, "uploaded": j.uploaded.UnixMilli(), "entry": []any{}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"address": "http://" + r.Host, "files": files})
}

// JarDeleteHandler: DELETE /jars/:jarid.
func (e *Emulator) deleteJar(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jars[seg[1]] == nil {
		writeError(w, badRequest("org.apache.flink.runtime.webmonitor.handlers.JarDeleteHandler", "File %s does not exist in /tmp/flink-web-emulated/flink-web-upload.", seg[1]))
		return
	}
	delete(e.jars, seg[1])
	for i, id := range e.jarOrder {
		if id == seg[1] {
			e.jarOrder = append(e.jarOrder[:i], e.jarOrder[i+1:]...)
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// runBody is JarRunRequestBody; flinkConfiguration came with FLIP-256
// (Flink 1.17), jobId lets the client choose the job id.
type runBody struct {
	EntryClass         string            `json:"entryClass"`
	ProgramArgs        string            `json:"programArgs"`
	ProgramArgsList    []string          `json:"programArgsList"`
	Parallelism        *int              `json:"parallelism"`
	JobID              string            `json:"jobId"`
	SavepointPath      string            `json:"savepointPath"`
	AllowNonRestored   *bool             `json:"allowNonRestoredState"`
	RestoreMode        string            `json:"restoreMode"`
	FlinkConfiguration map[string]string `json:"flinkConfiguration"`
}

// JarRunHandler: POST /jars/:jarid/run answers {"jobid": ...}. A failure to
// build or submit the job is RestHandlerException "Could not execute
// application." (500) with the cause.
func (e *Emulator) postRun(w http.ResponseWriter, r *http.Request, seg []string) {
	const handler = "org.apache.flink.runtime.webmonitor.handlers.JarRunHandler"
	var body runBody
	if raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil || (len(raw) > 0 && json.Unmarshal(raw, &body) != nil) {
		writeError(w, badBody("JarRunRequestBody"))
		return
	}
	fail := func(cause string) {
		writeError(w, &restError{status: http.StatusInternalServerError, handler: handler,
			message: "Could not execute application.\nCaused by: " + cause})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jars[seg[1]] == nil {
		writeError(w, badRequest(handler, "Jar file /tmp/flink-web-emulated/flink-web-upload/%s does not exist", seg[1]))
		return
	}
	if body.JobID != "" && !isJobID(body.JobID) {
		writeError(w, badBody("JarRunRequestBody"))
		return
	}
	prog, ok := e.opts.Programs[body.EntryClass]
	if !ok {
		fail("java.lang.ClassNotFoundException: " + body.EntryClass)
		return
	}
	args := body.ProgramArgsList
	if len(args) == 0 && body.ProgramArgs != "" {
		args = strings.Fields(body.ProgramArgs)
	}
	par := 1
	if body.Parallelism != nil && *body.Parallelism > 0 {
		par = *body.Parallelism
	}
	vs, err := prog.Topology(args, par)
	if err != nil {
		fail("org.apache.flink.client.program.ProgramInvocationException: The main method caused an error: " + err.Error())
		return
	}
	cfg := map[string]string{}
	for k, v := range body.FlinkConfiguration {
		cfg[k] = v
	}
	j, err := e.startJob(JobSpec{ID: body.JobID, Name: prog.JobName, Config: cfg, Vertices: vs}, &prog, args)
	if errors.Is(err, errDuplicate) {
		fail("org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already been submitted.")
		return
	}
	if err != nil {
		fail("org.apache.flink.runtime.client.JobSubmissionException: " + err.Error())
		return
	}
	// pipeline.global-job-parameters become the ExecutionConfig's global
	// job parameters, shown as user-config by GET /jobs/:jobid/config.
	for k, v := range parseFlinkMap(cfg["pipeline.global-job-parameters"]) {
		j.userConfig[k] = v
	}
	writeJSON(w, http.StatusOK, map[string]string{"jobid": j.id})
}

// parseFlinkMap reads Flink's map syntax "k1:v1,k2:v2".
func parseFlinkMap(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), ":")
		if ok && k != "" {
			out[k] = v
		}
	}
	return out
}
