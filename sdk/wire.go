package sdk

import (
	"encoding/json"
	"fmt"
	"time"

	pb "github.com/ebbscale/ebb/sdk/proto"
)

// This file converts between the Go values plugin authors see and the
// generated protocol messages. Nothing else in the SDK touches pb types.

func tsToPB(t time.Time) *pb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return &pb.Timestamp{UnixNano: t.UnixNano()}
}

// stamps hands out timestamps from one allocation: a batch's units and
// workers carry two each, and one allocation apiece was most of a
// conversion's cost.
type stamps []pb.Timestamp

func (s *stamps) of(t time.Time) *pb.Timestamp {
	if t.IsZero() || len(*s) == 0 {
		return tsToPB(t)
	}
	p := &(*s)[0]
	*s = (*s)[1:]
	p.UnixNano = t.UnixNano()
	return p
}

func tsFromPB(t *pb.Timestamp) time.Time {
	if t == nil || t.UnixNano == 0 {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano).UTC()
}

func targetToPB(t Target) *pb.Target { return &pb.Target{Chain: t.Chain, Name: t.Name} }

func targetFromPB(t *pb.Target) Target {
	if t == nil {
		return Target{}
	}
	return Target{Chain: t.Chain, Name: t.Name}
}

func schemaToPB(s Schema) (*pb.Schema, error) {
	out := &pb.Schema{}
	for _, a := range s.Attributes {
		pa := &pb.Attribute{
			Name:        a.Name,
			Type:        pb.Type(a.Type),
			Required:    a.Required,
			Description: a.Description,
			Sensitive:   a.Sensitive,
		}
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: encoding default: %w", a.Name, err)
			}
			pa.DefaultJson = string(b)
		}
		out.Attributes = append(out.Attributes, pa)
	}
	for _, b := range s.Blocks {
		inner, err := schemaToPB(b.Schema)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, &pb.Block{Name: b.Name, Description: b.Description, Schema: inner})
	}
	return out, nil
}

func schemaFromPB(s *pb.Schema) (Schema, error) {
	var out Schema
	if s == nil {
		return out, nil
	}
	for _, a := range s.Attributes {
		ga := Attribute{
			Name:        a.Name,
			Type:        Type(a.Type),
			Required:    a.Required,
			Description: a.Description,
			Sensitive:   a.Sensitive,
		}
		if a.DefaultJson != "" {
			if err := json.Unmarshal([]byte(a.DefaultJson), &ga.Default); err != nil {
				return out, fmt.Errorf("attribute %q: bad default %q: %w", a.Name, a.DefaultJson, err)
			}
		}
		out.Attributes = append(out.Attributes, ga)
	}
	for _, b := range s.Blocks {
		inner, err := schemaFromPB(b.Schema)
		if err != nil {
			return out, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, Block{Name: b.Name, Description: b.Description, Schema: inner})
	}
	return out, nil
}

func infoToPB(i Info) (*pb.PluginInfo, error) {
	cs, err := schemaToPB(i.ConfigSchema)
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	ps, err := schemaToPB(i.PolicySchema)
	if err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	return &pb.PluginInfo{
		Name:            i.Name,
		Kind:            pb.Kind(i.Kind),
		Version:         i.Version,
		ProtocolVersion: i.ProtocolVersion,
		ConfigSchema:    cs,
		PolicySchema:    ps,
	}, nil
}

func infoFromPB(p *pb.PluginInfo) (Info, error) {
	cs, err := schemaFromPB(p.GetConfigSchema())
	if err != nil {
		return Info{}, fmt.Errorf("config schema: %w", err)
	}
	ps, err := schemaFromPB(p.GetPolicySchema())
	if err != nil {
		return Info{}, fmt.Errorf("policy schema: %w", err)
	}
	return Info{
		Name:            p.GetName(),
		Kind:            Kind(p.GetKind()),
		Version:         p.GetVersion(),
		ProtocolVersion: p.GetProtocolVersion(),
		ConfigSchema:    cs,
		PolicySchema:    ps,
	}, nil
}

func snapshotToPB(s Snapshot) *pb.Snapshot {
	out := &pb.Snapshot{
		ObservedAt:        tsToPB(s.ObservedAt),
		Complete:          s.Complete,
		IncompleteReasons: s.IncompleteReasons,
		Demand: &pb.Demand{
			PlannedTasks:   s.Demand.PlannedTasks,
			ScheduledTasks: s.Demand.ScheduledTasks,
			RunningTasks:   s.Demand.RunningTasks,
			PendingTables:  s.Demand.PendingTables,
			PlanningTables: s.Demand.PlanningTables,

			ServiceablePlannedTasks: s.Demand.ServiceablePlannedTasks,
			ServiceableKnown:        s.Demand.ServiceableKnown,
		},
		Metrics:  s.Metrics,
		Conflict: s.Conflict,
	}
	if len(s.Workers) == 0 {
		return out
	}
	out.Workers = make([]*pb.Worker, len(s.Workers))
	ws := make([]pb.Worker, len(s.Workers))
	ts := make(stamps, 2*len(s.Workers))
	for i, w := range s.Workers {
		p := &ws[i]
		p.Id, p.UnitId = w.ID, w.UnitID
		p.Threads, p.BusyThreads, p.BusyKnown = w.Threads, w.BusyThreads, w.BusyKnown
		p.LastBusyAt, p.RegisteredAt = ts.of(w.LastBusyAt), ts.of(w.RegisteredAt)
		p.State = pb.WorkerState(w.State)
		out.Workers[i] = p
	}
	return out
}

func snapshotFromPB(s *pb.Snapshot) Snapshot {
	if s == nil {
		return Snapshot{}
	}
	d := s.GetDemand()
	out := Snapshot{
		ObservedAt:        tsFromPB(s.ObservedAt),
		Complete:          s.Complete,
		IncompleteReasons: s.IncompleteReasons,
		Demand: Demand{
			PlannedTasks:   d.GetPlannedTasks(),
			ScheduledTasks: d.GetScheduledTasks(),
			RunningTasks:   d.GetRunningTasks(),
			PendingTables:  d.GetPendingTables(),
			PlanningTables: d.GetPlanningTables(),

			ServiceablePlannedTasks: d.GetServiceablePlannedTasks(),
			ServiceableKnown:        d.GetServiceableKnown(),
		},
		Metrics:  s.Metrics,
		Conflict: s.GetConflict(),
	}
	if len(s.Workers) > 0 {
		out.Workers = make([]Worker, 0, len(s.Workers))
	}
	for _, w := range s.Workers {
		out.Workers = append(out.Workers, Worker{
			ID:           w.Id,
			UnitID:       w.UnitId,
			Threads:      w.Threads,
			BusyThreads:  w.BusyThreads,
			BusyKnown:    w.BusyKnown,
			LastBusyAt:   tsFromPB(w.LastBusyAt),
			State:        WorkerState(w.State),
			RegisteredAt: tsFromPB(w.RegisteredAt),
		})
	}
	return out
}

func unitsToPB(us []Unit) []*pb.Unit {
	out := make([]*pb.Unit, len(us))
	ps := make([]pb.Unit, len(us))
	ts := make(stamps, 2*len(us))
	for i, u := range us {
		p := &ps[i]
		p.Id, p.Size, p.Phase, p.Labels = u.ID, u.Size, pb.Phase(u.Phase), u.Labels
		p.CreatedAt, p.DrainStartedAt = ts.of(u.CreatedAt), ts.of(u.DrainStartedAt)
		out[i] = p
	}
	return out
}

func unitsFromPB(us []*pb.Unit) []Unit {
	out := make([]Unit, 0, len(us))
	for _, u := range us {
		out = append(out, Unit{
			ID:             u.Id,
			Size:           u.Size,
			Phase:          Phase(u.Phase),
			CreatedAt:      tsFromPB(u.CreatedAt),
			DrainStartedAt: tsFromPB(u.DrainStartedAt),
			Labels:         u.Labels,
		})
	}
	return out
}

func decisionToPB(d *Decision) *pb.Decision {
	if d == nil {
		return nil
	}
	out := &pb.Decision{
		DesiredCapacity:      d.DesiredCapacity,
		Drain:                d.Drain,
		Restart:              d.Restart,
		ParallelismOverrides: d.ParallelismOverrides,
		ConfigOverrides:      d.ConfigOverrides,
		Reason:               d.Reason,
		Vetoed:               d.Vetoed,
		Metrics:              d.Metrics,
	}
	for _, a := range d.Add {
		out.Add = append(out.Add, &pb.UnitAdd{UnitId: a.UnitID, Size: a.Size})
	}
	for _, r := range d.Remove {
		out.Remove = append(out.Remove, &pb.UnitRemove{UnitId: r.UnitID, Force: r.Force})
	}
	return out
}

func decisionFromPB(d *pb.Decision) *Decision {
	if d == nil {
		return nil
	}
	out := &Decision{
		DesiredCapacity:      d.DesiredCapacity,
		Drain:                d.Drain,
		Restart:              d.Restart,
		ParallelismOverrides: d.ParallelismOverrides,
		ConfigOverrides:      d.ConfigOverrides,
		Reason:               d.Reason,
		Vetoed:               d.Vetoed,
		Metrics:              d.Metrics,
	}
	for _, a := range d.Add {
		out.Add = append(out.Add, UnitAdd{UnitID: a.UnitId, Size: a.Size})
	}
	for _, r := range d.Remove {
		out.Remove = append(out.Remove, UnitRemove{UnitID: r.UnitId, Force: r.Force})
	}
	return out
}

func outcomeToPB(o *Outcome) *pb.Outcome {
	if o == nil {
		return nil
	}
	out := &pb.Outcome{RequestId: o.RequestID, DecidedAt: tsToPB(o.DecidedAt), Final: decisionToPB(&o.Final), RealizerError: o.RealizerError}
	for _, a := range o.Actions {
		out.Actions = append(out.Actions, &pb.ActionOutcome{Kind: pb.ActionKind(a.Kind), UnitId: a.UnitID, Result: pb.ActionResult(a.Result), By: a.By, Why: a.Why})
	}
	return out
}

func outcomeFromPB(o *pb.Outcome) *Outcome {
	if o == nil {
		return nil
	}
	out := &Outcome{RequestID: o.RequestId, DecidedAt: tsFromPB(o.DecidedAt), RealizerError: o.RealizerError}
	if f := decisionFromPB(o.Final); f != nil {
		out.Final = *f
	}
	for _, a := range o.Actions {
		out.Actions = append(out.Actions, ActionOutcome{Kind: ActionKind(a.Kind), UnitID: a.UnitId, Result: ActionResult(a.Result), By: a.By, Why: a.Why})
	}
	return out
}

func evaluateRequestToPB(req EvaluateRequest) *pb.EvaluateRequest {
	return &pb.EvaluateRequest{
		Target:           targetToPB(req.Target),
		PolicyJson:       req.Policy,
		Snapshot:         snapshotToPB(req.Snapshot),
		Inventory:        unitsToPB(req.Inventory),
		State:            req.State,
		Now:              tsToPB(req.Now),
		Previous:         decisionToPB(req.Previous),
		SnapshotDegraded: req.SnapshotDegraded,
		Outcome:          outcomeToPB(req.Outcome),
	}
}

func evaluateRequestFromPB(r *pb.EvaluateRequest) EvaluateRequest {
	return EvaluateRequest{
		Target:           targetFromPB(r.GetTarget()),
		Policy:           r.GetPolicyJson(),
		Snapshot:         snapshotFromPB(r.GetSnapshot()),
		Inventory:        unitsFromPB(r.GetInventory()),
		State:            r.GetState(),
		Now:              tsFromPB(r.GetNow()),
		Previous:         decisionFromPB(r.GetPrevious()),
		SnapshotDegraded: r.GetSnapshotDegraded(),
		Outcome:          outcomeFromPB(r.GetOutcome()),
	}
}

func evaluateResponseToPB(resp EvaluateResponse) *pb.EvaluateResponse {
	return &pb.EvaluateResponse{Decision: decisionToPB(&resp.Decision), State: resp.State}
}

func evaluateResponseFromPB(r *pb.EvaluateResponse) EvaluateResponse {
	var d Decision
	if r.GetDecision() != nil {
		d = *decisionFromPB(r.Decision)
	}
	return EvaluateResponse{Decision: d, State: r.GetState()}
}
