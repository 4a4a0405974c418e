package collectorams

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Group properties through which AMS scales a group itself
// (amoro-common/.../OptimizerProperties.java, amoro.md §0 and §6.2).
const (
	propDRAEnabled     = "dynamic-allocation.enabled"
	propDRAMin         = "dynamic-allocation.min-parallelism"
	propMinParallelism = "min-parallelism" // deprecated since 0.9.0, still honoured
)

// resourceGroup is ResourceGroup (amoro-common/.../resource/ResourceGroup.java)
// inside OptimizerResourceInfo (dashboard/model/OptimizerResourceInfo.java).
type resourceGroup struct {
	Name       string            `json:"name"`
	Container  string            `json:"container"`
	Properties map[string]string `json:"properties"`
}

type resourceInfo struct {
	ResourceGroup *resourceGroup `json:"resourceGroup"`
}

// readResourceGroup finds the group in GET /optimize/resourceGroups
// (OptimizerGroupController.getResourceGroup).
func readResourceGroup(ctx context.Context, a *amsAPI, group string) (*resourceGroup, error) {
	res, _, err := a.get(ctx, "/optimize/resourceGroups", nil)
	if err != nil {
		return nil, fmt.Errorf("GET /optimize/resourceGroups: %w", err)
	}
	var infos []resourceInfo
	if err := json.Unmarshal(res, &infos); err != nil {
		return nil, fmt.Errorf("GET /optimize/resourceGroups: malformed result: %w", err)
	}
	for _, in := range infos {
		if in.ResourceGroup != nil && in.ResourceGroup.Name == group {
			return in.ResourceGroup, nil
		}
	}
	return nil, fmt.Errorf("GET /optimize/resourceGroups: group %q is not listed", group)
}

// ownScaling names the property through which AMS already scales the group,
// or "". The two ways (amoro.md §0): its dynamic allocation
// (OptimizerScaleKeeper), switched on by dynamic-allocation.enabled, which
// Java's Boolean.parseBoolean reads case-insensitively; and the floor
// keeper (OptimizerGroupKeeper), which launches optimizers up to the
// min-parallelism in effect (DynamicAllocationConfig.resolveMinParallelism:
// the namespaced key, else the flat one) on any container AMS can launch
// on, i.e. not "external". 0.8.x has neither keeper, but a floor there is
// still the user's statement that AMS should hold optimizers; it is refused
// alike.
func ownScaling(g *resourceGroup) string {
	if v, ok := g.Properties[propDRAEnabled]; ok && strings.EqualFold(strings.TrimSpace(v), "true") {
		return fmt.Sprintf("%s=%s: AMS's own dynamic allocation scales it", propDRAEnabled, v)
	}
	if g.Container == "external" {
		return ""
	}
	for _, key := range []string{propDRAMin, propMinParallelism} {
		v, ok := g.Properties[key]
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return fmt.Sprintf("%s=%d on container %q: AMS's floor keeper launches optimizers for it", key, n, g.Container)
		}
		return "" // the key in effect; AMS reads a bad value as 0
	}
	return ""
}

// conflict sets the snapshot's Conflict when AMS scales the group itself.
// When the listing cannot be read, the group's last known entry decides; a
// group never seen is a conflict too, since ebb cannot tell it is alone.
func (c *Collector) conflict(s *collection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := s.resourceGroup
	if g != nil {
		c.groups[s.group] = *g
	} else {
		s.fail("%v", s.rgErr)
		if last, ok := c.groups[s.group]; ok {
			g = &last
		} else {
			s.snap.Conflict = fmt.Sprintf("cannot tell whether AMS scales optimizer group %q itself (%v): ebb changes nothing until it can", s.group, s.rgErr)
			return
		}
	}
	if why := ownScaling(g); why != "" {
		s.snap.Conflict = fmt.Sprintf("optimizer group %q: %s. ebb changes nothing on a group AMS scales. To hand it to ebb, set %s=false and remove %s and %s (PUT /api/ams/v1/optimize/resourceGroups replaces all properties), or use a group with container \"external\"",
			s.group, why, propDRAEnabled, propDRAMin, propMinParallelism)
	}
}
