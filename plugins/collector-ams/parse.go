package collectorams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// tableInfo is TableOptimizingInfo (amoro.md §4.2).
type tableInfo struct {
	TableIdentifier struct {
		Catalog   string `json:"catalog"`
		Database  string `json:"database"`
		TableName string `json:"tableName"`
	} `json:"tableIdentifier"`
	OptimizeStatus string `json:"optimizeStatus"`
	GroupName      string `json:"groupName"`
}

// processInfo is OptimizingProcessInfo (amoro.md §4.2).
type processInfo struct {
	ProcessID    flexInt `json:"processId"`
	Status       string  `json:"status"`
	TotalTasks   flexInt `json:"totalTasks"`
	SuccessTasks flexInt `json:"successTasks"`
	RunningTasks flexInt `json:"runningTasks"`
}

// taskInfo is OptimizingTaskInfo (amoro.md §4.2); status is TaskRuntime's
// (§2.3).
type taskInfo struct {
	TaskID         flexInt `json:"taskId"`
	Status         string  `json:"status"`
	OptimizerToken string  `json:"optimizerToken"`
	ThreadID       flexInt `json:"threadId"`
	StartTime      flexInt `json:"startTime"`
	EndTime        flexInt `json:"endTime"`
}

// groupGaugeNames are the optimizer-group gauges (OptimizerGroupMetrics.java,
// amoro.md §5.1) with the reporter's `amoro_` prefix (§5.2).
var groupGaugeNames = []string{
	"amoro_optimizer_group_pending_tasks",
	"amoro_optimizer_group_executing_tasks",
	"amoro_optimizer_group_planing_tables",
	"amoro_optimizer_group_pending_tables",
	"amoro_optimizer_group_executing_tables",
	"amoro_optimizer_group_idle_tables",
	"amoro_optimizer_group_committing_tables",
	"amoro_optimizer_group_optimizer_instances",
	"amoro_optimizer_group_memory_bytes_allocated",
	"amoro_optimizer_group_threads",
	"amoro_optimizer_group_idle_optimizers",
	"amoro_optimizer_group_config_invalid",
	// DRA-only (dra/DynamicAllocationMetrics.java): present only while AMS's
	// own dynamic allocation is on for the group.
	"amoro_optimizer_group_pending_removal_optimizers",
	"amoro_optimizer_group_effective_threads",
	"amoro_optimizer_group_backlog_duration_ms",
	"amoro_optimizer_group_scale_up_total",
	"amoro_optimizer_group_scale_down_total",
}

// parseGroupMetrics reads a Prometheus text exposition and returns the
// optimizer-group series whose `group` label is group.
func parseGroupMetrics(r io.Reader, group string) (out map[string]float64, err error) {
	// expfmt v0.66.1 dereferences nil on some malformed input (a line
	// starting with "{", found by FuzzParse): a broken exporter must yield
	// an error, not crash the plugin.
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("malformed exposition: parser failed: %v", p)
		}
	}()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("malformed exposition: %w", err)
	}
	out = map[string]float64{}
	for _, name := range groupGaugeNames {
		fam, ok := fams[name]
		if !ok {
			continue
		}
		for _, m := range fam.GetMetric() {
			if labelValue(m, "group") != group {
				continue
			}
			v, ok := sampleValue(fam.GetType(), m)
			if !ok {
				return nil, fmt.Errorf("metric %s{group=%q} has no usable value", name, group)
			}
			out[name] = v
		}
	}
	return out, nil
}

func parseGroupMetricsBytes(b []byte, group string) (map[string]float64, error) {
	return parseGroupMetrics(bytes.NewReader(b), group)
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sampleValue(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}
