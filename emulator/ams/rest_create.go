package ams

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The create and release endpoints of OptimizerGroupController and
// OptimizerController: AMS launching and stopping optimizers on a group's
// container.

// restScaleOut is OptimizerGroupController.scaleOutOptimizer, body
// {"parallelism": N}.
func (e *Emulator) restScaleOut(r *http.Request) (any, error) {
	var body struct {
		Parallelism json.Number `json:"parallelism"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if err := e.requestResource(r.PathValue("group"), body.Parallelism.String()); err != nil {
		return nil, err
	}
	return "success to scaleOut optimizer", nil
}

// restCreateOptimizer is OptimizerController.createOptimizer, body
// {"optimizerGroup": g, "parallelism": N or "N"}.
func (e *Emulator) restCreateOptimizer(r *http.Request) (any, error) {
	var body struct {
		OptimizerGroup any `json:"optimizerGroup"`
		Parallelism    any `json:"parallelism"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Parallelism == nil || body.OptimizerGroup == nil {
		return nil, fmt.Errorf("null") // map.get(...).toString() on a missing key: NullPointerException
	}
	if err := e.requestResource(fmt.Sprint(body.OptimizerGroup), fmt.Sprint(body.Parallelism)); err != nil {
		return nil, err
	}
	return "success to create optimizer", nil
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("Couldn't deserialize body to Map: %v", err)
	}
	return nil
}

// requestResource creates one optimizer of `parallelism` threads in the
// group, as both create endpoints do: a Resource with a new resource id and
// the group's container, requestResource on that container, then the
// resource row. No resource id is returned: the optimizer shows up in the
// listing once it registers, which an emulated container does at once. The
// reserved container "external" is not a container AMS can launch on.
func (e *Emulator) requestResource(groupName, parallelism string) error {
	n, err := strconv.Atoi(strings.TrimSpace(parallelism))
	if err != nil {
		return fmt.Errorf("For input string: %q", parallelism)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, ok := e.groups[groupName]
	if !ok {
		return fmt.Errorf("Cannot invoke \"org.apache.amoro.resource.ResourceGroup.getContainer()\" because \"resourceGroup\" is null")
	}
	if g.container == ExternalContainer {
		return fmt.Errorf("ResourceContainer not found: %s", ExternalContainer)
	}
	if n < 1 {
		return fmt.Errorf("optimizer parallelism must be positive, got %d", n)
	}
	id := e.newResourceID()
	e.resources[id] = g
	o := e.registerLocked(g, id, int32(n), 0, e.now, DefaultHeartbeatInterval, map[string]string{"resource-id": id})
	o.virt = &virtualOptimizer{slots: make([]*task, n)}
	e.dispatchLocked()
	return nil
}

// restReleaseOptimizer is OptimizerController.releaseOptimizer: the resource
// id must belong to a listed optimizer and have a resource row (one AMS
// launched); the container releases it (Local kills it, the others stop
// it with SIGTERM, which lets it finish its tasks), and the optimizer and
// resource rows go at once while AMS's memory keeps the optimizer until its
// heartbeat stops.
func (e *Emulator) restReleaseOptimizer(r *http.Request) (any, error) {
	id := r.PathValue("jobId")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	var found []*optimizer
	for _, o := range e.listedLocked(nil) {
		if o.resourceID == id {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("The resource ID %s has not been indexed to any optimizer.", id)
	}
	g, ok := e.resources[id]
	if !ok {
		return nil, fmt.Errorf("Cannot invoke \"org.apache.amoro.resource.Resource.getProperties()\" because \"resource\" is null")
	}
	for _, o := range found {
		o.released = true
		if o.virt == nil {
			continue
		}
		if strings.Contains(strings.ToLower(g.container), "local") {
			o.virt.stoppedAt = e.now // kill -9
			for i, tk := range o.virt.slots {
				if tk != nil {
					tk.finishAt = time.Time{}
					o.virt.slots[i] = nil
				}
			}
		} else {
			o.virt.draining = true
		}
	}
	delete(e.resources, id)
	e.dispatchLocked()
	return "Success to release optimizer", nil
}

// newResourceID is Resource.Builder's short id: a random UUID in base 32,
// lower case, here from the seeded source so runs repeat.
func (e *Emulator) newResourceID() string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	a, b := e.rng.Uint64(), e.rng.Uint64()
	var out []byte
	for _, x := range []uint64{a, b} {
		for i := 0; i < 13 && x > 0; i++ {
			out = append(out, digits[x%32])
			x /= 32
		}
	}
	return string(out)
}
