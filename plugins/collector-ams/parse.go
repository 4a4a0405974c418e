package collectorams

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// AMS's REST envelope (amoro.md §4.1, dashboard/response/*.java): success is
// {"message":"success","code":200,"result":…}; an error is
// {"message","code":403|500,"requestId"} inside an HTTP 200, so the code in
// the body decides, not the HTTP status.
type envelope struct {
	Message *string         `json:"message"`
	Code    *int            `json:"code"`
	Result  json.RawMessage `json:"result"`
}

// AMSError is an error AMS reported in the body of a response.
type AMSError struct {
	Code    int
	Message string
}

func (e *AMSError) Error() string { return fmt.Sprintf("AMS error code %d: %s", e.Code, e.Message) }

// decodeEnvelope returns the `result` of a successful response.
func decodeEnvelope(body []byte) (json.RawMessage, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if env.Code == nil {
		return nil, errors.New("malformed response: no \"code\" field")
	}
	if *env.Code != 200 {
		msg := ""
		if env.Message != nil {
			msg = *env.Message
		}
		return nil, &AMSError{Code: *env.Code, Message: msg}
	}
	return env.Result, nil
}

// page is PageResult (amoro.md §4.1).
type page[T any] struct {
	List  []T `json:"list"`
	Total int `json:"total"`
}

func decodePage[T any](result json.RawMessage) (page[T], error) {
	var p page[T]
	if len(result) == 0 || string(result) == "null" {
		return p, errors.New("malformed response: no page in \"result\"")
	}
	if err := json.Unmarshal(result, &p); err != nil {
		return p, fmt.Errorf("malformed page: %w", err)
	}
	if p.Total < 0 {
		return p, fmt.Errorf("malformed page: negative total %d", p.Total)
	}
	return p, nil
}

// flexInt reads a JSON number or a numeric string: AMS versions differ in
// whether long ids are sent as numbers or strings (JavaScript precision).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*f = 0
		return nil
	}
	s = strings.Trim(s, `"`)
	if s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fv, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || fv != float64(int64(fv)) {
			return fmt.Errorf("not an integer: %s", s)
		}
		v = int64(fv)
	}
	*f = flexInt(v)
	return nil
}

// optimizerInfo is OptimizerInstanceInfo (amoro.md §4.2,
// dashboard/model/OptimizerInstanceInfo.java): startTime and touchTime are
// epoch milliseconds, jobId is the resourceId (null for external optimizers).
type optimizerInfo struct {
	Token      string  `json:"token"`
	StartTime  flexInt `json:"startTime"`
	TouchTime  flexInt `json:"touchTime"`
	JobID      *string `json:"jobId"`
	GroupName  string  `json:"groupName"`
	CoreNumber flexInt `json:"coreNumber"`
	Memory     flexInt `json:"memory"`
	JobStatus  string  `json:"jobStatus"`
	Container  string  `json:"container"`
}

type groupName struct {
	OptimizerGroupName string `json:"optimizerGroupName"`
}

// tableInfo is TableOptimizingInfo (amoro-ams/.../dashboard/model/
// TableOptimizingInfo.java, identifier from ServerTableIdentifier.java):
// quota is a double, threads on 0.9+ and self-optimizing.quota on 0.8.x.
type tableInfo struct {
	TableIdentifier struct {
		Catalog   string `json:"catalog"`
		Database  string `json:"database"`
		TableName string `json:"tableName"`
	} `json:"tableIdentifier"`
	OptimizeStatus string  `json:"optimizeStatus"`
	Quota          float64 `json:"quota"`
	GroupName      string  `json:"groupName"`
}

// processID is OptimizingProcessInfo.processId: a string on every version
// since 0.7 (a long would lose precision in JavaScript), accepted as a
// number too. It goes into a URL path, so only decimal digits pass.
type processID string

func (p *processID) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*p = ""
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	*p = processID(s)
	return nil
}

func (p processID) id() (string, error) {
	s := string(p)
	if s == "" || len(s) > 19 {
		return "", fmt.Errorf("process id %q is not a decimal long", s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("process id %q is not a decimal long", s)
		}
	}
	return s, nil
}

// processInfo is OptimizingProcessInfo (amoro-common/.../table/descriptor/
// OptimizingProcessInfo.java).
type processInfo struct {
	ProcessID    processID `json:"processId"`
	Status       string    `json:"status"`
	TotalTasks   flexInt   `json:"totalTasks"`
	SuccessTasks flexInt   `json:"successTasks"`
	RunningTasks flexInt   `json:"runningTasks"`
}

// taskInfo is OptimizingTaskInfo (amoro-common/.../table/descriptor/
// OptimizingTaskInfo.java); status is ProcessTaskStatus (TaskRuntime's names,
// amoro.md §2.3). optimizerToken is null and threadId -1 on a PLANNED task.
type taskInfo struct {
	TaskID         flexInt `json:"taskId"`
	Status         string  `json:"status"`
	OptimizerToken string  `json:"optimizerToken"`
	ThreadID       flexInt `json:"threadId"`
	StartTime      flexInt `json:"startTime"`
	EndTime        flexInt `json:"endTime"`
}
