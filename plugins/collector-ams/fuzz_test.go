package collectorams

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to every decoder the collector applies to
// AMS responses: none may panic, and a page it accepts is consistent.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"message":"success","code":200,"result":{"list":[{"token":"t","startTime":1,"touchTime":"2","jobId":null,"coreNumber":4}],"total":1}}`))
	f.Add([]byte(`{"message":"no","code":403,"requestId":""}`))
	f.Add([]byte(`{"code":200,"result":{"list":[{"taskId":1,"status":"ACKED","optimizerToken":"t","endTime":1.5}],"total":-1}}`))
	f.Add([]byte(`{"code":200,"result":{"list":[{"processId":"12345678901234567890"}],"total":3}}`))
	f.Add([]byte("# TYPE amoro_optimizer_group_threads gauge\namoro_optimizer_group_threads{group=\"g\"} 4\n"))
	f.Add([]byte("amoro_optimizer_group_pending_tasks{group=\"g\"} NaN\namoro_optimizer_group_pending_tasks{group=\"g\"} 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if res, err := decodeEnvelope(b); err == nil {
			if p, err := decodePage[optimizerInfo](res); err == nil && p.Total < 0 {
				t.Fatalf("accepted a negative total")
			}
			_, _ = decodePage[taskInfo](res)
			_, _ = decodePage[processInfo](res)
			_, _ = decodePage[tableInfo](res)
		}
		_, _ = parseGroupMetricsBytes(b, "g")
	})
}
