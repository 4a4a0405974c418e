package flink

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Flink's error body is {"errors":[...]} (ErrorResponseBody). Since Flink
// 1.18 AbstractHandler.handleException puts a RestHandlerException's whole
// stringified exception (class, message, stack) in the one element; any other
// exception is a 500 with "Internal server error." and the stack wrapped in
// "<Exception on server side: ... End of exception on server side>"
// (flink-runtime/.../rest/handler/AbstractHandler.java). The emulator writes
// a one-frame stack naming the handler it stands in for.

// restError is a RestHandlerException (or a subclass) with its status.
type restError struct {
	status    int
	class     string
	message   string
	handler   string
	internal  bool
	exception string // internal: the exception class inside the 500
}

func (e *restError) body() []string {
	if e.internal {
		trace := fmt.Sprintf("<Exception on server side:\n%s: %s\n\tat %s(emulated)\n\nEnd of exception on server side>", e.exception, e.message, e.handler)
		return []string{"Internal server error.", trace}
	}
	class := e.class
	if class == "" {
		class = "org.apache.flink.runtime.rest.handler.RestHandlerException"
	}
	return []string{fmt.Sprintf("%s: %s\n\tat %s(emulated)", class, e.message, e.handler)}
}

func badRequest(handler, format string, args ...any) *restError {
	return &restError{status: http.StatusBadRequest, handler: handler, message: fmt.Sprintf(format, args...)}
}

// jobNotFound is the NotFoundException AbstractExecutionGraphHandler throws
// for an unknown job (FlinkJobNotFoundException mapped to 404).
func jobNotFound(handler, id string) *restError {
	return &restError{status: http.StatusNotFound, handler: handler,
		class: "org.apache.flink.runtime.rest.NotFoundException", message: fmt.Sprintf("Job %s not found", id)}
}

// gatewayJobNotFound is what a handler that does not map the dispatcher's
// FlinkJobNotFoundException returns (JobResourceRequirementsHandler and the
// update handler pass the gateway's future through): a 500.
func gatewayJobNotFound(handler, id string) *restError {
	return &restError{status: http.StatusInternalServerError, internal: true, handler: handler,
		exception: "org.apache.flink.runtime.messages.FlinkJobNotFoundException", message: fmt.Sprintf("Could not find Flink job (%s)", id)}
}

// unknownPathParam is HandlerRequest's "Cannot resolve path parameter"
// answered with 400 by AbstractHandler.
func unknownPathParam(key, value string) *restError {
	return &restError{status: http.StatusBadRequest, handler: "org.apache.flink.runtime.rest.handler.HandlerRequest.resolveParameters",
		message: fmt.Sprintf("Bad request, could not parse parameters: Cannot resolve path parameter (%s) from value \"%s\".", key, value)}
}

// badBody is AbstractHandler's answer to a body Jackson cannot map.
func badBody(class string) *restError {
	return &restError{status: http.StatusBadRequest, handler: "org.apache.flink.runtime.rest.handler.AbstractHandler.respondAsLeader",
		message: fmt.Sprintf("Request did not match expected format %s.", class)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *restError) {
	writeJSON(w, e.status, map[string][]string{"errors": e.body()})
}

// writeNotFound is RouterHandler's answer to a path no handler serves.
func writeNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string][]string{"errors": {"Not found: " + r.URL.Path}})
}
