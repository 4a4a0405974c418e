package ams

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// OptimizerAPIPrefix is the emulator-only home of the Thrift OptimizingService
// operations (amoro.md §2.2). Real optimizers speak Thrift on port 1261; here
// each method is a POST of a JSON object whose fields are the Thrift
// arguments:
//
//	POST …/authenticate  {"registerInfo": OptimizerRegisterInfo}  -> result: token
//	POST …/touch         {"authToken"}                             -> result: null
//	POST …/pollTask      {"authToken","threadId"}                  -> result: OptimizingTask or null
//	POST …/ackTask       {"authToken","threadId","taskId":{processId,taskId}}
//	POST …/completeTask  {"authToken","taskResult": OptimizingTaskResult}
//	POST …/ping
//
// Answers use the REST envelope. An AmoroException is code 400 with its Java
// class name in "exception" (PluginRetryAuthException, ForbiddenException, …).
const OptimizerAPIPrefix = "/emulator/v1/optimizer"

// ControlPrefix holds the emulator's own control endpoints, for `ebb dev`
// and manual runs:
//
//	POST …/submit          {"group","table","durations":["30s",…]}
//	POST …/optimizers      {"group","unitId","threads"}   start an in-process optimizer
//	POST …/optimizers/{unitId}/drain | …/kill
//	GET  …/stats
const ControlPrefix = "/emulator/v1/control"

type optimizerCall struct {
	AuthToken    string        `json:"authToken"`
	ThreadID     int32         `json:"threadId"`
	TaskID       *TaskID       `json:"taskId"`
	TaskResult   *TaskResult   `json:"taskResult"`
	RegisterInfo *RegisterInfo `json:"registerInfo"`
}

type serviceErrorResponse struct {
	Message   string `json:"message"`
	Code      int    `json:"code"`
	Exception string `json:"exception"`
}

func (e *Emulator) optimizerRoutes(mux *http.ServeMux) {
	op := func(name string, f func(c optimizerCall) (any, error)) {
		mux.HandleFunc("POST "+OptimizerAPIPrefix+"/"+name, func(w http.ResponseWriter, r *http.Request) {
			var c optimizerCall
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				writeJSON(w, http.StatusBadRequest, serviceErrorResponse{Message: "bad request body: " + err.Error(), Code: 400, Exception: ExcIllegalArgument})
				return
			}
			res, err := f(c)
			var se *ServiceError
			switch {
			case errors.As(err, &se):
				writeJSON(w, http.StatusOK, serviceErrorResponse{Message: se.Message, Code: 400, Exception: se.Exception})
			case err != nil:
				writeJSON(w, http.StatusOK, serviceErrorResponse{Message: err.Error(), Code: 500})
			default:
				writeJSON(w, http.StatusOK, okResponse{Message: "success", Code: 200, Result: res})
			}
		})
	}
	op("ping", func(optimizerCall) (any, error) { return nil, nil })
	op("authenticate", func(c optimizerCall) (any, error) {
		if c.RegisterInfo == nil {
			return nil, &ServiceError{ExcIllegalArgument, "registerInfo is required"}
		}
		return e.Authenticate(*c.RegisterInfo)
	})
	op("touch", func(c optimizerCall) (any, error) { return nil, e.Touch(c.AuthToken) })
	op("pollTask", func(c optimizerCall) (any, error) {
		t, err := e.PollTask(c.AuthToken, c.ThreadID)
		if err != nil || t == nil {
			return nil, err
		}
		return t, nil
	})
	op("ackTask", func(c optimizerCall) (any, error) {
		if c.TaskID == nil {
			return nil, &ServiceError{ExcIllegalArgument, "taskId is required"}
		}
		return nil, e.AckTask(c.AuthToken, c.ThreadID, *c.TaskID)
	})
	op("completeTask", func(c optimizerCall) (any, error) {
		if c.TaskResult == nil {
			return nil, &ServiceError{ExcIllegalArgument, "taskResult is required"}
		}
		return nil, e.CompleteTask(c.AuthToken, *c.TaskResult)
	})
}

type controlSubmit struct {
	Group     string   `json:"group"`
	Table     string   `json:"table"`
	Durations []string `json:"durations"`
}

type controlOptimizer struct {
	Group   string `json:"group"`
	UnitID  string `json:"unitId"`
	Threads int    `json:"threads"`
}

func (e *Emulator) controlRoutes(mux *http.ServeMux) {
	reply := func(w http.ResponseWriter, res any, err error) {
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{Message: err.Error(), Code: 400})
			return
		}
		writeJSON(w, http.StatusOK, okResponse{Message: "success", Code: 200, Result: res})
	}
	decode := func(r *http.Request, v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("bad request body: %w", err)
		}
		return nil
	}
	mux.HandleFunc("POST "+ControlPrefix+"/submit", func(w http.ResponseWriter, r *http.Request) {
		var c controlSubmit
		if err := decode(r, &c); err != nil {
			reply(w, nil, err)
			return
		}
		ds := make([]time.Duration, 0, len(c.Durations))
		for _, s := range c.Durations {
			d, err := time.ParseDuration(s)
			if err != nil {
				reply(w, nil, fmt.Errorf("duration %q: %w", s, err))
				return
			}
			ds = append(ds, d)
		}
		reply(w, nil, e.Submit(c.Group, c.Table, ds...))
	})
	mux.HandleFunc("POST "+ControlPrefix+"/optimizers", func(w http.ResponseWriter, r *http.Request) {
		var c controlOptimizer
		if err := decode(r, &c); err != nil {
			reply(w, nil, err)
			return
		}
		_, err := e.StartOptimizer(c.Group, c.UnitID, c.Threads)
		reply(w, nil, err)
	})
	mux.HandleFunc("POST "+ControlPrefix+"/optimizers/{unit}/drain", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, e.DrainOptimizer(r.PathValue("unit")))
	})
	mux.HandleFunc("POST "+ControlPrefix+"/optimizers/{unit}/kill", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, e.KillOptimizer(r.PathValue("unit")))
	})
	mux.HandleFunc("GET "+ControlPrefix+"/stats", func(w http.ResponseWriter, r *http.Request) {
		reply(w, e.AllStats(), nil)
	})
}
