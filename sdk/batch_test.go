package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ebbscale/ebb/sdk/proto"
)

// batchingCollector has its own batch method; its single one must not be
// used for a batch.
type batchingCollector struct{ short bool }

func (batchingCollector) Info(context.Context) (Info, error) {
	return Info{Name: "b", ProtocolVersion: ProtocolVersion}, nil
}
func (batchingCollector) Configure(context.Context, json.RawMessage) error { return nil }
func (batchingCollector) Collect(context.Context, Target) (Snapshot, error) {
	return Snapshot{}, errors.New("the single method was called for a batch")
}

func (c batchingCollector) CollectBatch(_ context.Context, ts []Target) []CollectResult {
	out := make([]CollectResult, len(ts))
	for i, t := range ts {
		if strings.HasPrefix(t.Name, "bad") {
			out[i].Err = fmt.Errorf("%s is bad", t.Name)
			continue
		}
		out[i].Snapshot = Snapshot{Complete: true, Demand: Demand{PlannedTasks: int64(len(t.Name))}}
	}
	if c.short {
		return out[1:]
	}
	return out
}

func inProcessCollector(t *testing.T, impl Collector) *collectorClient {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, PluginSet(impl))
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(KindCollector.String())
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*collectorClient)
}

func TestPluginsOwnBatchMethodServesBatches(t *testing.T) {
	c := inProcessCollector(t, batchingCollector{})
	rs, err := c.collectBatch(context.Background(), []Target{{Name: "a"}, {Name: "bad-1"}, {Name: "ccc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Err != nil || rs[0].Snapshot.Demand.PlannedTasks != 1 || rs[1].Err == nil ||
		rs[1].Err.Error() != "bad-1 is bad" || rs[2].Snapshot.Demand.PlannedTasks != 3 || !rs[2].Snapshot.Complete {
		t.Fatalf("%+v", rs)
	}
	// A batch method that loses a result fails the whole call rather than
	// shifting answers onto the wrong targets.
	short := inProcessCollector(t, batchingCollector{short: true})
	if rs, err := short.collectBatch(context.Background(), []Target{{Name: "a"}, {Name: "b"}}); err == nil || !strings.Contains(err.Error(), "returned 1 results for 2 requests") {
		t.Fatalf("short batch: %+v %v", rs, err)
	}
}

func TestServerRefusesOversizedBatch(t *testing.T) {
	s := &collectorServer{impl: batchingCollector{}}
	req := &pb.CollectBatchRequest{}
	for range MaxBatch + 1 {
		req.Requests = append(req.Requests, &pb.CollectRequest{Target: &pb.Target{Name: "a"}})
	}
	if _, err := s.CollectBatch(context.Background(), req); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("%d requests: %v, want InvalidArgument", len(req.Requests), err)
	}
	req.Requests = req.Requests[:MaxBatch]
	if r, err := s.CollectBatch(context.Background(), req); err != nil || len(r.Results) != MaxBatch {
		t.Fatalf("%d requests: %v", len(req.Requests), err)
	}
}

// A plugin that negotiated version 2 but lacks the batch RPCs (one in
// another language) is answered by single calls from then on.
func TestUnimplementedBatchFallsBack(t *testing.T) {
	var singles atomic.Int64
	send := func(context.Context, []*pb.CollectRequest) ([]int, error) {
		return nil, status.Error(codes.Unimplemented, "unknown method")
	}
	single := func(_ context.Context, i int) (int, error) { singles.Add(1); return i * 10, nil }
	var b batching
	for round := range 2 {
		out, err := callBatches(context.Background(), &b, 3, func(int) *pb.CollectRequest { return &pb.CollectRequest{} }, send, single, func(error) int { return -1 })
		if err != nil || fmt.Sprint(out) != "[0 10 20]" {
			t.Fatalf("round %d: %v %v", round, out, err)
		}
	}
	if !b.off.Load() || singles.Load() != 6 {
		t.Fatalf("batching off %v, %d single calls", b.off.Load(), singles.Load())
	}
}

// An SDK plugin serving a runner that speaks only version 1 says so in its
// Info, which that runner checks against its own version.
func TestInfoReportsNegotiatedVersion(t *testing.T) {
	for _, v := range []int{1, 2} {
		client, _ := goplugin.TestPluginGRPCConn(t, false, versionSet(batchingCollector{}, v))
		raw, err := client.Dispense(KindCollector.String())
		if err != nil {
			t.Fatal(err)
		}
		info, err := raw.(Plugin).Info(context.Background())
		if err != nil || info.ProtocolVersion != uint32(v) {
			t.Fatalf("served as version %d: info %+v, %v", v, info, err)
		}
		client.Close()
	}
}
