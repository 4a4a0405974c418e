package ams

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Shapes of amoro-ams/.../dashboard/model/ (OptimizerInstanceInfo.java,
// OptimizerResourceInfo.java, TableOptimizingInfo.java) and
// amoro-common/.../ServerTableIdentifier.java, ResourceGroup.java.

type optimizerInstanceInfo struct {
	Token      string  `json:"token"`
	StartTime  int64   `json:"startTime"`
	TouchTime  int64   `json:"touchTime"`
	JobID      *string `json:"jobId"` // the resourceId; null for an optimizer started without -id
	GroupName  string  `json:"groupName"`
	CoreNumber int32   `json:"coreNumber"`
	Memory     int32   `json:"memory"`
	JobStatus  string  `json:"jobStatus"`
	Container  string  `json:"container"`
}

type resourceGroupJSON struct {
	Name       string            `json:"name"`
	Container  string            `json:"container"`
	Properties map[string]string `json:"properties"`
}

type optimizerResourceInfo struct {
	ResourceGroup    *resourceGroupJSON `json:"resourceGroup"`
	OccupationCore   int64              `json:"occupationCore"`
	OccupationMemory int64              `json:"occupationMemory"`
}

type tableIDJSON struct {
	Catalog   string `json:"catalog"`
	Database  string `json:"database"`
	TableName string `json:"tableName"`
}

type serverTableIdentifierJSON struct {
	ID         int64       `json:"id"`
	Catalog    string      `json:"catalog"`
	Database   string      `json:"database"`
	TableName  string      `json:"tableName"`
	Format     string      `json:"format"`
	Identifier tableIDJSON `json:"identifier"`
}

type tableOptimizingInfo struct {
	TableIdentifier serverTableIdentifierJSON `json:"tableIdentifier"`
	TableName       string                    `json:"tableName"`
	OptimizeStatus  string                    `json:"optimizeStatus"`
	Duration        int64                     `json:"duration"`
	FileCount       int64                     `json:"fileCount"`
	FileSize        int64                     `json:"fileSize"`
	Quota           float64                   `json:"quota"`
	QuotaOccupation float64                   `json:"quotaOccupation"`
	GroupName       string                    `json:"groupName"`
}

// DefaultTableQuota is TableProperties.SELF_OPTIMIZING_QUOTA_DEFAULT: a
// proportional quota of half the group's threads.
const DefaultTableQuota = 0.5

// quotaLookBack is AmoroServiceConstants.QUOTA_LOOK_BACK_TIME.
const quotaLookBack = time.Hour

// emulatedFileSize is what one emulated task stands for in fileCount /
// fileSize: a file of 128 MiB (the tables have no real files).
const emulatedFileSize = 128 << 20

// OptimizerGroupController.getOptimizerGroups.
func (e *Emulator) restGroups(*http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []map[string]string{}
	for _, g := range e.groupOrder {
		out = append(out, map[string]string{"optimizerGroupName": g.name})
	}
	return out, nil
}

// listedLocked is OptimizerManager.listOptimizers: the DB optimizer table,
// which loses a released optimizer at once although AMS's memory keeps it
// until its heartbeat times out (amoro.md §4.2 release semantics).
func (e *Emulator) listedLocked(g *group) []*optimizer {
	var out []*optimizer
	for _, o := range e.optimizers {
		if !o.released && (g == nil || o.group == g) {
			out = append(out, o)
		}
	}
	return out
}

func occupation(opts []*optimizer) (cores, mem int64) {
	for _, o := range opts {
		cores += int64(o.threads)
		mem += int64(o.memoryMB)
	}
	return cores, mem
}

// OptimizerGroupController.getResourceGroup: every group with its
// properties and the threads and memory of its listed optimizers.
func (e *Emulator) restResourceGroups(*http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	out := []optimizerResourceInfo{}
	for _, g := range e.groupOrder {
		c, m := occupation(e.listedLocked(g))
		props := map[string]string{}
		for k, v := range g.properties {
			props[k] = v
		}
		out = append(out, optimizerResourceInfo{
			ResourceGroup:  &resourceGroupJSON{Name: g.name, Container: g.container, Properties: props},
			OccupationCore: c, OccupationMemory: m,
		})
	}
	return out, nil
}

// groupFilterLocked resolves the {group} path parameter: "all" is every
// group; an unknown name filters to nothing, as the controller's DB queries
// do (OptimizerGroupController.java getOptimizers/getOptimizerGroupInfo/
// getOptimizerTables): an empty page or zeros, never an error.
func (e *Emulator) groupFilterLocked(r *http.Request) (g *group, all bool) {
	name := r.PathValue("group")
	if name == "all" {
		return nil, true
	}
	return e.groups[name], false
}

func (e *Emulator) filteredLocked(r *http.Request) []*optimizer {
	g, all := e.groupFilterLocked(r)
	if !all && g == nil {
		return nil
	}
	return e.listedLocked(g)
}

// OptimizerGroupController.getOptimizerGroupInfo: resourceGroup is null.
func (e *Emulator) restGroupInfo(r *http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	c, m := occupation(e.filteredLocked(r))
	return optimizerResourceInfo{OccupationCore: c, OccupationMemory: m}, nil
}

// OptimizerGroupController.getOptimizers: newest start time first, then
// PageResult.of(list, offset, limit).
func (e *Emulator) restOptimizers(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	list := []optimizerInstanceInfo{}
	for _, o := range e.filteredLocked(r) {
		info := optimizerInstanceInfo{
			Token: o.token, StartTime: o.startTime.UnixMilli(), TouchTime: e.lastTouchLocked(o).UnixMilli(),
			GroupName: o.group.name, CoreNumber: o.threads, Memory: o.memoryMB,
			JobStatus: "RUNNING", Container: o.group.container,
		}
		if o.resourceID != "" {
			id := o.resourceID
			info.JobID = &id
		}
		list = append(list, info)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].StartTime > list[j].StartTime })
	return pageOf(list, page, size), nil
}

// OptimizerGroupController.getOptimizerTables: `actions[]` is a repeated
// parameter of OptimizingStatus display values; unknown values are dropped
// and, if none is left, the filter is dropped and every table comes back.
func (e *Emulator) restTables(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	actions := map[TableStatus]bool{}
	for _, a := range q["actions[]"] {
		for _, s := range tableStatusOrder {
			if string(s) == a {
				actions[s] = true
			}
		}
	}
	dbSearch, tableSearch := q.Get("dbSearchInput"), q.Get("tableSearchInput")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, all := e.groupFilterLocked(r)
	list := []tableOptimizingInfo{}
	for _, gg := range e.groupOrder {
		if !all && gg != g {
			continue
		}
		for _, t := range gg.tables {
			if len(actions) > 0 && !actions[t.status] {
				continue
			}
			if dbSearch != "" && !strings.Contains(t.database, dbSearch) || tableSearch != "" && !strings.Contains(t.name, tableSearch) {
				continue
			}
			list = append(list, e.tableInfoLocked(t))
		}
	}
	return pageOf(list, page, size), nil
}

// tableInfoLocked follows OptimizingUtil.buildTableOptimizeInfo: quota in
// threads ((int)q when the table's self-optimizing.quota q > 1, else
// ceil(q × max(group threads, 1))), quotaOccupation the share of that quota
// used over the look-back hour rounded to 4 decimals, and files of the
// running process (processing) or the pending input (pending), else 0.
func (e *Emulator) tableInfoLocked(t *table) tableOptimizingInfo {
	threads, _ := occupation(e.listedLocked(t.group))
	quota := math.Ceil(t.quota * float64(max(threads, 1)))
	if t.quota > 1 {
		quota = math.Trunc(t.quota)
	}
	from := e.now.Add(-quotaLookBack)
	var used time.Duration
	for _, p := range t.processes {
		for _, tk := range p.tasks {
			start, end := tk.startTime, tk.endTime
			switch tk.status {
			case TaskScheduled, TaskAcked:
				end = e.now
			case TaskSuccess, TaskFailed:
			default:
				continue
			}
			if start.Before(from) {
				start = from
			}
			if end.After(start) {
				used += end.Sub(start)
			}
		}
	}
	occ := 0.0
	if quota > 0 {
		occ = math.Round(float64(used)/(float64(quotaLookBack)*quota)*1e4) / 1e4
	}
	var files int64
	switch {
	case t.status.isProcessing() && t.current != nil:
		files = int64(len(t.current.tasks))
	case t.status == TablePending:
		files = int64(len(t.queued))
	}
	return tableOptimizingInfo{
		TableIdentifier: serverTableIdentifierJSON{ID: t.id, Catalog: t.catalog, Database: t.database, TableName: t.name, Format: "ICEBERG",
			Identifier: tableIDJSON{Catalog: t.catalog, Database: t.database, TableName: t.name}},
		TableName: t.fullName(), OptimizeStatus: string(t.status),
		Duration:  e.now.Sub(t.statusSince).Milliseconds(),
		FileCount: files, FileSize: files * emulatedFileSize,
		Quota: quota, QuotaOccupation: occ, GroupName: t.group.name,
	}
}

// SetTableQuota sets a table's self-optimizing.quota: at most 1 a share of
// the group's threads, above 1 a fixed number of threads. The table is
// created idle if it does not exist.
func (e *Emulator) SetTableQuota(groupName, tableName string, quota float64) error {
	if !(quota > 0) || math.IsInf(quota, 0) {
		return fmt.Errorf("ams emulator: quota %v must be a positive number", quota)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	if err := e.submitLocked(groupName, tableName, nil); err != nil {
		return err
	}
	c, d, n, _ := e.splitTableName(tableName)
	e.tables[c+"."+d+"."+n].quota = quota
	return nil
}
