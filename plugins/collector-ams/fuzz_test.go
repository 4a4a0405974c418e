package collectorams

import (
	"bytes"
	"math"
	"testing"
)

// FuzzParse feeds arbitrary bytes to every decoder the collector applies to
// AMS responses, the optimizer listing through de-duplication included:
// none may panic, a page it accepts is consistent, and nothing unusable
// reaches the gauges.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"message":"success","code":200,"result":{"list":[{"token":"t","startTime":1,"touchTime":"2","jobId":null,"coreNumber":4}],"total":1}}`))
	f.Add([]byte(`{"code":200,"result":{"list":[{"token":"t","jobId":"u","coreNumber":4},{"token":"t","jobId":"u","coreNumber":1099511627776},{"token":"x","jobId":"u"}],"total":3}}`))
	f.Add([]byte(`{"message":"no","code":403,"requestId":""}`))
	f.Add([]byte(`{"code":200,"result":{"list":[{"taskId":1,"status":"PLANNED","optimizerToken":null,"threadId":-1,"failReason":null}],"total":-1}}`))
	f.Add([]byte(`{"code":200,"result":{"list":[{"processId":"12345678901234567890"},{"processId":"../x"}],"total":3}}`))
	f.Add([]byte("# TYPE amoro_optimizer_group_threads gauge\namoro_optimizer_group_threads{group=\"g\"} 4\n"))
	f.Add([]byte("amoro_optimizer_group_pending_tasks{group=\"g\"} NaN\namoro_optimizer_group_executing_tasks{group=\"g\"} 1e19\namoro_optimizer_group_threads{group=\"g\",x=\"a\\\"b\"} +Inf\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if res, err := decodeEnvelope(b); err == nil {
			if p, err := decodePage[optimizerInfo](res); err == nil {
				if p.Total < 0 {
					t.Fatalf("accepted a negative total")
				}
				s := &collection{group: "g"}
				kept := s.dedupe(p.List)
				seen := map[string]bool{}
				for _, o := range kept {
					if seen[o.Token] || (o.JobID != nil && *o.JobID != "" && seen["unit:"+*o.JobID]) {
						t.Fatalf("a duplicate survived: %+v", kept)
					}
					seen[o.Token] = true
					if o.JobID != nil && *o.JobID != "" {
						seen["unit:"+*o.JobID] = true
					}
				}
				if len(kept) < len(p.List) && len(s.snap.IncompleteReasons) == 0 {
					t.Fatalf("dropped duplicates without a reason")
				}
			}
			_, _ = decodePage[taskInfo](res)
			if p, err := decodePage[processInfo](res); err == nil {
				for _, pr := range p.List {
					if id, err := pr.ProcessID.id(); err == nil && bytes.ContainsAny([]byte(id), "/.?#%") {
						t.Fatalf("process id %q would change the URL path", id)
					}
				}
			}
			_, _ = decodePage[tableInfo](res)
		}
		scrape, _ := scanGroupMetrics(bytes.NewReader(b), "g", 1<<16)
		for k, v := range scrape.values {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxGaugeValue {
				t.Fatalf("%s = %v accepted", k, v)
			}
		}
	})
}
