package ams

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Shapes of amoro-common/.../table/descriptor/OptimizingProcessInfo.java and
// OptimizingTaskInfo.java: processId is a string (a long would lose
// precision in JavaScript), failReason and a PLANNED task's optimizerToken
// are null, a PLANNED task's threadId is -1.

type filesStatistics struct {
	FileCnt     int   `json:"fileCnt"`
	TotalSize   int64 `json:"totalSize"`
	AverageSize int64 `json:"averageSize"`
}

type optimizingProcessInfo struct {
	TableID        int64             `json:"tableId"`
	CatalogName    string            `json:"catalogName"`
	DBName         string            `json:"dbName"`
	TableName      string            `json:"tableName"`
	ProcessID      string            `json:"processId"`
	StartTime      int64             `json:"startTime"`
	OptimizingType string            `json:"optimizingType"`
	Status         string            `json:"status"`
	FailReason     *string           `json:"failReason"`
	Duration       int64             `json:"duration"`
	SuccessTasks   int               `json:"successTasks"`
	TotalTasks     int               `json:"totalTasks"`
	RunningTasks   int               `json:"runningTasks"`
	FinishTime     int64             `json:"finishTime"`
	InputFiles     filesStatistics   `json:"inputFiles"`
	OutputFiles    filesStatistics   `json:"outputFiles"`
	Summary        map[string]string `json:"summary"`
}

type optimizingTaskInfo struct {
	TableID        int64             `json:"tableId"`
	ProcessID      string            `json:"processId"`
	TaskID         int32             `json:"taskId"`
	PartitionData  string            `json:"partitionData"`
	Status         string            `json:"status"`
	RetryNum       int               `json:"retryNum"`
	OptimizerToken *string           `json:"optimizerToken"`
	ThreadID       int32             `json:"threadId"`
	StartTime      int64             `json:"startTime"`
	EndTime        int64             `json:"endTime"`
	CostTime       int64             `json:"costTime"`
	FailReason     *string           `json:"failReason"`
	InputFiles     filesStatistics   `json:"inputFiles"`
	OutputFiles    filesStatistics   `json:"outputFiles"`
	Summary        map[string]string `json:"summary"`
	Properties     map[string]string `json:"properties"`
}

// optimizingTypes is MixedAndIcebergTableDescriptor's OPTIMIZING_TYPE_LIST,
// the process types of the "optimizing" category.
var optimizingTypes = []string{"MINOR", "MAJOR", "FULL"}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (e *Emulator) tableParamLocked(r *http.Request) *table {
	return e.tables[r.PathValue("catalog")+"."+r.PathValue("db")+"."+r.PathValue("table")]
}

func (e *Emulator) processInfoLocked(p *process) optimizingProcessInfo {
	info := optimizingProcessInfo{
		TableID: p.table.id, ProcessID: strconv.FormatInt(p.id, 10),
		CatalogName: p.table.catalog, DBName: p.table.database, TableName: p.table.name,
		Status: string(p.status), OptimizingType: "MINOR", TotalTasks: len(p.tasks),
		StartTime: p.startTime.UnixMilli(), FailReason: nullable(p.failure), Summary: map[string]string{},
	}
	end := e.now
	if !p.endTime.IsZero() {
		end = p.endTime
		info.FinishTime = p.endTime.UnixMilli()
	}
	info.Duration = end.Sub(p.startTime).Milliseconds()
	info.InputFiles = filesStatistics{FileCnt: len(p.tasks), TotalSize: int64(len(p.tasks)) * emulatedFileSize, AverageSize: emulatedFileSize}
	for _, tk := range p.tasks {
		switch tk.status {
		case TaskSuccess:
			info.SuccessTasks++
		case TaskScheduled, TaskAcked:
			info.RunningTasks++
		}
	}
	return info
}

// restProcesses is TableController.getOptimizingProcesses with
// MixedAndIcebergTableDescriptor.getOptimizingProcessesInfo (master and
// 0.9.x, since apache/amoro#4238): without `type` a `processCategory` is
// needed, and with neither the page is empty; an unknown category is empty
// too. `status` is ProcessStatus.valueOf: anything but one of its names is
// code 500 "No enum constant ...". A table AMS does not know, and a page
// past the end, are {list: [], total: 0}.
func (e *Emulator) restProcesses(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	var status ProcessStatus
	if s := q.Get("status"); strings.TrimSpace(s) != "" {
		status = ProcessStatus(s)
		if !validProcessStatus(status) {
			return nil, fmt.Errorf("No enum constant org.apache.amoro.process.ProcessStatus.%s", s)
		}
	}
	typ, category := strings.TrimSpace(q.Get("type")), strings.TrimSpace(q.Get("processCategory"))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	empty := pageResult{List: []optimizingProcessInfo{}, Total: 0}
	t := e.tableParamLocked(r)
	if t == nil {
		return empty, nil
	}
	types := map[string]bool{}
	switch {
	case typ != "":
		types[typ] = true
	case strings.EqualFold(category, "optimizing"):
		for _, x := range optimizingTypes {
			types[x] = true
		}
	default:
		// No category, or a category without optimizing processes
		// (cleanup, profiling): the emulator has none of the latter.
		return empty, nil
	}
	list := []optimizingProcessInfo{}
	for i := len(t.processes) - 1; i >= 0; i-- {
		info := e.processInfoLocked(t.processes[i])
		if !types[info.OptimizingType] || status != "" && ProcessStatus(info.Status) != status {
			continue
		}
		list = append(list, info)
	}
	pg := pageOf(list, page, size)
	if l, _ := pg.List.([]optimizingProcessInfo); len(l) == 0 {
		return empty, nil // `if (pageInfo.getSize() == 0) return (empty, 0)`
	}
	return pg, nil
}

func validProcessStatus(s ProcessStatus) bool {
	for _, x := range processStatuses {
		if x == s {
			return true
		}
	}
	return false
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// restTasks is TableController.getOptimizingProcessTasks: the process id is
// Long.parseLong'ed (a bad one is code 500), an unknown process has no
// tasks, and the list is PageResult.of(list, offset, limit).
func (e *Emulator) restTasks(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	raw := r.PathValue("process")
	pid, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("For input string: %q", raw)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	list := []optimizingTaskInfo{}
	var p *process
	if t := e.tableParamLocked(r); t != nil {
		for _, x := range t.processes {
			if x.id == pid {
				p = x
			}
		}
	}
	if p == nil {
		return pageOf(list, page, size), nil
	}
	for _, tk := range p.tasks {
		list = append(list, optimizingTaskInfo{
			TableID: p.table.id, ProcessID: strconv.FormatInt(p.id, 10), TaskID: tk.taskID,
			Status: string(tk.status), RetryNum: tk.retryNum, OptimizerToken: nullable(tk.token),
			ThreadID: tk.threadID, StartTime: ms(tk.startTime), EndTime: ms(tk.endTime),
			CostTime: tk.costTime.Milliseconds(), FailReason: nullable(tk.failReason),
			InputFiles: filesStatistics{FileCnt: 1, TotalSize: emulatedFileSize, AverageSize: emulatedFileSize},
			Summary:    map[string]string{},
			Properties: map[string]string{},
		})
	}
	return pageOf(list, page, size), nil
}
