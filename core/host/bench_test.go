package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ebbscale/ebb/sdk"
	pb "github.com/ebbscale/ebb/sdk/proto"
)

// BenchmarkCycle measures one chain's cycle (collect, inventory, evaluate)
// through three plugin processes, in one run so that the ratios are the
// figures: as single calls over go-plugin with mutual TLS (what the runner
// does today), batched B targets per call, and as a plain grpc-go baseline
// (one server process for the three services, Unix socket, no go-plugin,
// no TLS) with the same calls and payloads. Besides ns/op (one cycle of B
// targets) it reports ns/eval (wall time per target) and cpu-ns/eval, the
// CPU of every process involved (this one and the plugin servers) per
// target evaluation. On a shared machine, read the ratios.
func BenchmarkCycle(b *testing.B) {
	dir, _ := pluginDir(b)
	units := b.TempDir()
	h := New(Options{PluginDir: dir})
	b.Cleanup(h.Close)
	col := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: json.RawMessage(`{"file":"/nonexistent"}`)})
	inv := h.Instance(Spec{Block: "r", Kind: sdk.KindRealizer, Plugin: "test-realizer", Config: json.RawMessage(`{"dir":"` + units + `"}`)})
	ev := h.Instance(Spec{Block: "e", Kind: sdk.KindEvaluator, Plugin: "test-evaluator"})
	ctx := context.Background()
	policy := json.RawMessage(`{"per-unit":1}`)
	target := sdk.Target{Chain: "a", Name: "bench"}
	states := map[int][]byte{}

	single := func() error {
		snap, err := col.Collect(ctx, target)
		if err != nil {
			return err
		}
		us, err := inv.Inventory(ctx, target)
		if err != nil {
			return err
		}
		resp, err := ev.Evaluate(ctx, sdk.EvaluateRequest{Target: target, Policy: policy, Snapshot: snap, Inventory: us, State: states[0], Now: time.Now()})
		states[0] = resp.State
		return err
	}
	if err := single(); err != nil { // starts the processes
		b.Fatal(err)
	}
	pids := []int{col.Pid(), inv.Pid(), ev.Pid()}
	b.Run("single", func(b *testing.B) { measure(b, 1, pids, single) })

	for _, n := range []int{1, 10, 100} {
		ts := make([]sdk.Target, n)
		for i := range ts {
			ts[i] = sdk.Target{Chain: fmt.Sprintf("c%d", i), Name: "bench"}
		}
		reqs := make([]sdk.EvaluateRequest, n)
		batch := func() error {
			snaps, err := col.CollectBatch(ctx, ts)
			if err != nil {
				return err
			}
			invs, err := inv.InventoryBatch(ctx, ts)
			if err != nil {
				return err
			}
			now := time.Now()
			for i := range reqs {
				reqs[i] = sdk.EvaluateRequest{Target: ts[i], Policy: policy, Snapshot: snaps[i].Snapshot, Inventory: invs[i].Units, State: states[i], Now: now}
			}
			res, err := ev.EvaluateBatch(ctx, reqs)
			if err != nil {
				return err
			}
			for i, r := range res {
				if r.Err != nil {
					return r.Err
				}
				states[i] = r.Response.State
			}
			return nil
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { measure(b, n, pids, batch) })
	}

	base, pid := startBaseline(b, filepath.Join(dir, "test-collector"))
	var state []byte
	baseline := func() error {
		t := &pb.Target{Chain: "a", Name: "bench"}
		c, err := base.c.Collect(ctx, &pb.CollectRequest{Target: t})
		if err != nil {
			return err
		}
		i, err := base.r.Inventory(ctx, &pb.InventoryRequest{Target: t})
		if err != nil {
			return err
		}
		e, err := base.e.Evaluate(ctx, &pb.EvaluateRequest{Target: t, PolicyJson: policy, Snapshot: c.Snapshot, Inventory: i.Units,
			State: state, Now: &pb.Timestamp{UnixNano: time.Now().UnixNano()}})
		if err != nil {
			return err
		}
		state = e.State
		return nil
	}
	if err := baseline(); err != nil {
		b.Fatal(err)
	}
	b.Run("grpc-baseline", func(b *testing.B) { measure(b, 1, []int{pid}, baseline) })
}

// measure runs cycle b.N times; each cycle evaluates perCycle targets.
func measure(b *testing.B, perCycle int, pids []int, cycle func() error) {
	b.ReportAllocs()
	cpu0 := cpuOf(b, pids)
	b.ResetTimer()
	for b.Loop() {
		if err := cycle(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	evals := float64(b.N * perCycle)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/evals, "ns/eval")
	b.ReportMetric(float64((cpuOf(b, pids)-cpu0).Nanoseconds())/evals, "cpu-ns/eval")
}

// cpuOf is the user and system CPU this process and pids have used.
func cpuOf(b *testing.B, pids []int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatalf("process %d: %v", pid, err)
		}
		// Fields after the command (which may hold spaces) start at state;
		// utime and stime are the 14th and 15th of the line, in clock ticks.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux ABI Go supports.
const clockTicks = 100

type baselineClients struct {
	c pb.CollectorClient
	r pb.RealizerClient
	e pb.EvaluatorClient
}

// startBaseline runs the test plugin binary as a plain grpc-go server.
func startBaseline(b *testing.B, testplugin string) (baselineClients, int) {
	bin := filepath.Join(b.TempDir(), "test-grpc-baseline")
	if err := os.Symlink(testplugin, bin); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "baseline.sock")
	cmd := exec.Command(bin, sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("baseline server: %q %v", line, err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return baselineClients{pb.NewCollectorClient(conn), pb.NewRealizerClient(conn), pb.NewEvaluatorClient(conn)}, cmd.Process.Pid
}
