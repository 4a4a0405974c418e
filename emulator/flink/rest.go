package flink

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Handler serves the REST API, under / and under /v1 (RestServerEndpoint
// registers every handler for both the unversioned and the v1 URL).
func (e *Emulator) Handler() http.Handler {
	return http.HandlerFunc(e.serve)
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(path, "/v1"); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
		path = rest
	}
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	pattern, h := e.route(r.Method, seg)
	if h == nil {
		writeNotFound(w, r)
		return
	}
	e.mu.Lock()
	e.requests[r.Method+" "+pattern]++
	e.mu.Unlock()
	h(w, r, seg)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, seg []string)

// route matches the paths of rest_v1_dispatcher.yml that the emulator serves.
// A method a path does not take gets the router's 404, as in Flink.
func (e *Emulator) route(method string, seg []string) (string, handlerFunc) {
	type key struct {
		method  string
		pattern string
	}
	p := make([]string, len(seg))
	for i, s := range seg {
		p[i] = s
	}
	// Parameter positions: /jobs/:jobid/..., /jobs/:jobid/vertices/:vertexid,
	// /jobs/:jobid/savepoints/:triggerid, /jars/:jarid/run.
	if len(p) >= 2 && p[0] == "jobs" && p[1] != "overview" {
		p[1] = ":jobid"
	}
	if len(p) == 4 && p[0] == "jobs" && (p[2] == "vertices" || p[2] == "savepoints") {
		p[3] = ":id"
	}
	if len(p) >= 2 && p[0] == "jars" && p[1] != "upload" {
		p[1] = ":jarid"
	}
	pattern := "/" + strings.Join(p, "/")
	routes := map[key]handlerFunc{
		{"GET", "/config"}:                            e.getConfig,
		{"GET", "/overview"}:                          e.getOverview,
		{"GET", "/taskmanagers"}:                      e.getTaskManagers,
		{"GET", "/jobmanager/config"}:                 e.getClusterConfig,
		{"GET", "/jobs"}:                              e.getJobIDs,
		{"GET", "/jobs/overview"}:                     e.getJobsOverview,
		{"GET", "/jobs/:jobid"}:                       e.getJob,
		{"PATCH", "/jobs/:jobid"}:                     e.patchJob,
		{"GET", "/jobs/:jobid/config"}:                e.getJobConfig,
		{"GET", "/jobs/:jobid/vertices/:id"}:          e.getVertex,
		{"POST", "/jobs/:jobid/stop"}:                 e.postStop,
		{"GET", "/jobs/:jobid/savepoints/:id"}:        e.getSavepoint,
		{"GET", "/jars"}:                              e.getJars,
		{"POST", "/jars/upload"}:                      e.postJar,
		{"POST", "/jars/:jarid/run"}:                  e.postRun,
		{"DELETE", "/jars/:jarid"}:                    e.deleteJar,
		{"GET", "/jobs/:jobid/jobmanager/config"}:     e.getJobManagerJobConfig,
		{"GET", "/jobs/:jobid/resource-requirements"}: e.getRequirements,
		{"PUT", "/jobs/:jobid/resource-requirements"}: e.putRequirements,
	}
	h := routes[key{method, pattern}]
	// FLIP-291's endpoints came with Flink 1.18 (FLINK-31469); older
	// JobManagers have no handler for them.
	if strings.HasSuffix(pattern, "/resource-requirements") && !e.atLeast(1, 18) {
		return pattern, nil
	}
	return pattern, h
}

// DashboardConfigHandler: GET /config.
func (e *Emulator) getConfig(w http.ResponseWriter, _ *http.Request, _ []string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"refresh-interval": 3000,
		"timezone-name":    "Coordinated Universal Time",
		"timezone-offset":  0,
		"flink-version":    e.opts.Version,
		"flink-revision":   "emulated @ 1970-01-01T00:00:00+00:00",
		"features":         map[string]bool{"web-submit": true, "web-cancel": true, "web-rescale": false, "web-history": false},
	})
}

// ClusterOverviewHandler: GET /overview (ClusterOverviewWithVersion).
func (e *Emulator) getOverview(w http.ResponseWriter, _ *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	counts := map[string]int{}
	for _, j := range e.jobs {
		counts[j.state]++
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"taskmanagers":    e.opts.TaskManagers,
		"slots-total":     e.totalSlots(),
		"slots-available": e.freeSlots(),
		"jobs-running":    counts[StateRunning] + counts[StateCancelling] + counts[StateCreated],
		"jobs-finished":   counts[StateFinished],
		"jobs-cancelled":  counts[StateCanceled],
		"jobs-failed":     counts[StateFailed],
		"flink-version":   e.opts.Version,
		"flink-commit":    "emulated",
	})
}

// TaskManagersHandler: GET /taskmanagers (TaskManagersInfo). Slots are
// filled task manager by task manager.
func (e *Emulator) getTaskManagers(w http.ResponseWriter, _ *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	used := e.totalSlots() - e.freeSlots()
	tms := []map[string]any{}
	for i := 0; i < e.opts.TaskManagers; i++ {
		busy := min(max(used-i*e.opts.SlotsPerTaskManager, 0), e.opts.SlotsPerTaskManager)
		tms = append(tms, map[string]any{
			"id":                     fmt.Sprintf("10.0.0.%d:6122-%06x", i+1, i),
			"path":                   fmt.Sprintf("pekko.tcp://flink@10.0.0.%d:6122/user/rpc/taskmanager_0", i+1),
			"dataPort":               6121,
			"jmxPort":                -1,
			"timeSinceLastHeartbeat": e.opts.Clock().UnixMilli(),
			"slotsNumber":            e.opts.SlotsPerTaskManager,
			"freeSlots":              e.opts.SlotsPerTaskManager - busy,
			"totalResource":          map[string]any{"cpuCores": float64(e.opts.SlotsPerTaskManager), "taskHeapMemory": 512, "taskOffHeapMemory": 0, "managedMemory": 512, "networkMemory": 128, "extendedResources": map[string]any{}},
			"freeResource":           map[string]any{"cpuCores": float64(e.opts.SlotsPerTaskManager - busy), "taskHeapMemory": 512, "taskOffHeapMemory": 0, "managedMemory": 512, "networkMemory": 128, "extendedResources": map[string]any{}},
			"hardware":               map[string]any{"cpuCores": e.opts.SlotsPerTaskManager, "physicalMemory": 8 << 30, "freeMemory": 1 << 30, "managedMemory": 512 << 20},
			"blocked":                false,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"taskmanagers": tms})
}

// ClusterConfigHandler: GET /jobmanager/config, a list of {key, value}.
func (e *Emulator) getClusterConfig(w http.ResponseWriter, _ *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	writeJSON(w, http.StatusOK, configEntries(e.opts.Config))
}

func configEntries(m map[string]string) []map[string]string {
	out := []map[string]string{}
	for _, k := range sortedKeys(m) {
		out = append(out, map[string]string{"key": k, "value": m[k]})
	}
	return out
}

// JobIdsHandler: GET /jobs.
func (e *Emulator) getJobIDs(w http.ResponseWriter, _ *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	jobs := []map[string]string{}
	for _, id := range e.order {
		jobs = append(jobs, map[string]string{"id": id, "status": e.jobs[id].state})
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

// JobsOverviewHandler: GET /jobs/overview (MultipleJobsDetails).
func (e *Emulator) getJobsOverview(w http.ResponseWriter, _ *http.Request, _ []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	jobs := []map[string]any{}
	for _, id := range e.order {
		j := e.jobs[id]
		end, dur := int64(-1), e.opts.Clock().Sub(j.start).Milliseconds()
		if j.terminal() {
			end, dur = j.end.UnixMilli(), j.end.Sub(j.start).Milliseconds()
		}
		tasks := map[string]int{"running": 0, "canceling": 0, "canceled": 0, "total": 0, "created": 0, "scheduled": 0,
			"deploying": 0, "reconciling": 0, "finished": 0, "initializing": 0, "failed": 0}
		for _, v := range j.vertices {
			tasks["total"] += v.parallelism
			tasks[strings.ToLower(taskState(j))] += v.parallelism
		}
		jobs = append(jobs, map[string]any{"jid": j.id, "name": j.name, "state": j.state, "start-time": j.start.UnixMilli(),
			"end-time": end, "duration": dur, "last-modification": lastModified(j), "tasks": tasks})
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func lastModified(j *job) int64 {
	var last int64
	for _, t := range j.timestamps {
		last = max(last, t)
	}
	return last
}

// taskState is the execution state of every subtask of a job in a state.
func taskState(j *job) string {
	switch j.state {
	case StateCancelling:
		return "CANCELING"
	case StateCanceled:
		return "CANCELED"
	case StateFinished:
		return "FINISHED"
	case StateFailed:
		return "FAILED"
	}
	return "RUNNING"
}

// lookup resolves the :jobid path parameter.
func (e *Emulator) lookup(w http.ResponseWriter, id, handler string, notFound func(string, string) *restError) *job {
	if !isJobID(id) {
		writeError(w, unknownPathParam("jobid", id))
		return nil
	}
	j := e.jobs[strings.ToLower(id)]
	if j == nil {
		writeError(w, notFound(handler, id))
	}
	return j
}

// JobDetailsHandler: GET /jobs/:jobid (JobDetailsInfo, with the JSON plan).
func (e *Emulator) getJob(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], "org.apache.flink.runtime.rest.handler.job.JobDetailsHandler", jobNotFound)
	if j == nil {
		return
	}
	now := e.opts.Clock()
	end, dur := int64(-1), now.Sub(j.start).Milliseconds()
	if j.terminal() {
		end, dur = j.end.UnixMilli(), j.end.Sub(j.start).Milliseconds()
	}
	var vertices, nodes []map[string]any
	status := map[string]int{}
	for _, v := range j.vertices {
		st := taskState(j)
		status[st] += v.parallelism
		vertices = append(vertices, map[string]any{
			"id": v.id, "slotSharingGroupId": "a5d3f6c4e1b2a3f4c5d6e7f8a9b0c1d2", "name": v.name,
			"maxParallelism": v.maxParallelism, "parallelism": v.parallelism, "status": st,
			"start-time": j.start.UnixMilli(), "end-time": end, "duration": dur,
			"tasks": map[string]int{st: v.parallelism},
			"metrics": map[string]any{"read-bytes": 0, "read-bytes-complete": true, "write-bytes": 0, "write-bytes-complete": true,
				"read-records": 0, "read-records-complete": true, "write-records": 0, "write-records-complete": true,
				"accumulated-backpressured-time": 0, "accumulated-idle-time": 0, "accumulated-busy-time": 0.0},
		})
		node := map[string]any{"id": v.id, "parallelism": v.parallelism, "operator": "", "operator_strategy": "",
			"description": v.name, "optimizer_properties": map[string]any{}}
		if v.input != "" {
			node["inputs"] = []map[string]any{{"num": 0, "id": v.input, "ship_strategy": v.ship, "exchange": "pipelined_bounded"}}
		}
		nodes = append(nodes, node)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"jid": j.id, "name": j.name, "isStoppable": false, "state": j.state, "job-type": "STREAMING",
		"start-time": j.start.UnixMilli(), "end-time": end, "duration": dur, "maxParallelism": -1, "now": now.UnixMilli(),
		"timestamps": j.timestamps, "vertices": vertices, "status-counts": status,
		"plan": map[string]any{"jid": j.id, "name": j.name, "type": "STREAMING", "nodes": nodes},
	})
}

// JobVertexDetailsHandler: GET /jobs/:jobid/vertices/:vertexid, one entry
// per subtask; subtask i runs in the TaskManager of slot i.
func (e *Emulator) getVertex(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], "org.apache.flink.runtime.rest.handler.job.JobVertexDetailsHandler", jobNotFound)
	if j == nil {
		return
	}
	var v *vertex
	for _, c := range j.vertices {
		if c.id == strings.ToLower(seg[3]) {
			v = c
		}
	}
	if v == nil {
		writeError(w, &restError{status: http.StatusNotFound, class: "org.apache.flink.runtime.rest.NotFoundException",
			handler: "org.apache.flink.runtime.rest.handler.job.AbstractJobVertexHandler", message: "JobVertexID not found"})
		return
	}
	subtasks := []map[string]any{}
	for i := 0; i < v.parallelism; i++ {
		tm := i / e.opts.SlotsPerTaskManager
		subtasks = append(subtasks, map[string]any{
			"subtask": i, "status": taskState(j), "attempt": 0, "endpoint": fmt.Sprintf("10.0.0.%d:6121", tm+1),
			"start-time": j.timestamps[StateRunning], "end-time": -1, "duration": e.opts.Clock().UnixMilli() - j.timestamps[StateRunning],
			"taskmanager-id": fmt.Sprintf("10.0.0.%d:6122-%06x", tm+1, tm), "timestamps": map[string]int64{"RUNNING": j.timestamps[StateRunning]},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": v.id, "name": v.name, "parallelism": v.parallelism,
		"maxParallelism": v.maxParallelism, "now": e.opts.Clock().UnixMilli(), "subtasks": subtasks})
}

// JobConfigHandler: GET /jobs/:jobid/config (JobConfigInfo); user-config
// holds the job's global job parameters.
func (e *Emulator) getJobConfig(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], "org.apache.flink.runtime.rest.handler.job.JobConfigHandler", jobNotFound)
	if j == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jid": j.id, "name": j.name, "execution-config": map[string]any{
		"execution-mode": "PIPELINED", "restart-strategy": "Cluster level default restart strategy",
		"job-parallelism": j.widest(), "object-reuse-mode": false, "user-config": j.userConfig,
	}})
}

// JobManagerJobConfigurationHandler: GET /jobs/:jobid/jobmanager/config,
// the configuration the job's JobMaster runs with.
func (e *Emulator) getJobManagerJobConfig(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], "org.apache.flink.runtime.rest.handler.job.JobManagerJobConfigurationHandler", jobNotFound)
	if j == nil {
		return
	}
	writeJSON(w, http.StatusOK, configEntries(j.config))
}

// JobCancellationHandler: PATCH /jobs/:jobid?mode=cancel answers 202 with an
// empty body; mode=stop was removed (308, "use jobs/:jobId/stop").
func (e *Emulator) patchJob(w http.ResponseWriter, r *http.Request, seg []string) {
	const handler = "org.apache.flink.runtime.rest.handler.job.JobCancellationHandler"
	mode := strings.ToLower(r.URL.Query().Get("mode"))
	switch mode {
	case "", "cancel":
	case "stop":
		writeError(w, &restError{status: http.StatusPermanentRedirect, handler: handler,
			message: `The termination mode "stop" has been removed. For an ungraceful shutdown, please use "cancel" instead. For a graceful shutdown, please use "jobs/:jobId/stop" instead.`})
		return
	default:
		writeError(w, badRequest(handler, "Bad request, could not parse parameters: Invalid value %q for query parameter mode.", mode))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], handler, func(h, id string) *restError {
		return &restError{status: http.StatusNotFound, handler: h, message: "Job could not be found."}
	})
	if j == nil {
		return
	}
	e.cancelLocked(j)
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

// StopWithSavepointHandler: POST /jobs/:jobid/stop {targetDirectory, drain}
// triggers a savepoint and stops; without a directory and without
// state.savepoints.dir the operation fails.
func (e *Emulator) postStop(w http.ResponseWriter, r *http.Request, seg []string) {
	var body struct {
		TargetDirectory string `json:"targetDirectory"`
		Drain           bool   `json:"drain"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err.Error() != "EOF" {
		writeError(w, badBody("StopWithSavepointRequestBody"))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.lookup(w, seg[1], "org.apache.flink.runtime.rest.handler.job.savepoints.SavepointHandlers$StopWithSavepointHandler", jobNotFound)
	if j == nil {
		return
	}
	t := &trigger{jobID: j.id}
	dir := body.TargetDirectory
	if dir == "" {
		dir = j.config["state.savepoints.dir"]
	}
	if dir == "" {
		t.failure = "java.lang.IllegalStateException: No savepoint directory configured. You can either specify a directory while cancelling via -s :targetDirectory or configure a cluster-wide default via key 'state.savepoints.dir'."
	} else {
		t.location = strings.TrimSuffix(dir, "/") + "/savepoint-" + j.id[:6] + "-emulated"
		e.cancelLocked(j)
	}
	id := newID()
	e.triggers[id] = t
	writeJSON(w, http.StatusAccepted, map[string]string{"request-id": id})
}

// SavepointStatusHandler: GET /jobs/:jobid/savepoints/:triggerid.
func (e *Emulator) getSavepoint(w http.ResponseWriter, _ *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.triggers[seg[3]]
	if t == nil || t.jobID != strings.ToLower(seg[1]) {
		writeError(w, &restError{status: http.StatusNotFound, handler: "org.apache.flink.runtime.rest.handler.async.AbstractAsynchronousOperationHandlers",
			class: "org.apache.flink.runtime.rest.NotFoundException", message: "Operation not found under key: " + seg[3]})
		return
	}
	op := map[string]any{"location": t.location}
	if t.failure != "" {
		op = map[string]any{"failure-cause": map[string]string{"class": "java.lang.IllegalStateException", "stack-trace": t.failure, "serialized-throwable": ""}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": map[string]string{"id": "COMPLETED"}, "operation": op})
}
