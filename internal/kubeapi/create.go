package kubeapi

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ebbscale/ebb/sdk"
)

// UnitKeys are the label keys (and the managed-by value) that mark an object
// as one ebb unit of a chain's group; each realizer has its own group key.
type UnitKeys struct {
	ManagedBy, ManagedByValue, Unit, Chain, Group string
}

// NewUnit names the object a unit add creates; Kind is for messages
// ("Deployment").
type NewUnit struct {
	Kind, Namespace, Name, UnitID string
	Target                        sdk.Target
	Keys                          UnitKeys
}

// Existing is what CreateUnit reads of an object that already has the
// unit's name: its labels and whether it is draining.
type Existing struct {
	Labels   map[string]string
	Draining bool
}

// CreateUnit creates a unit's object with create. The unit id is the name,
// so a retried request finds the object there: that counts as done
// ("exists u-1") only if get shows it is ebb's unit of the same chain and
// group and not draining; otherwise the error says which.
func (b Backoff) CreateUnit(ctx context.Context, u NewUnit, create func() error, get func() (Existing, error)) (string, error) {
	what := fmt.Sprintf("create %s %s/%s", u.Kind, u.Namespace, u.Name)
	err := b.Do(ctx, what, create)
	if err == nil {
		return "created " + u.UnitID, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	var ex Existing
	if err := b.Do(ctx, "get "+u.Kind+" "+u.Namespace+"/"+u.Name, func() error {
		var err error
		ex, err = get()
		return err
	}); err != nil {
		return "", err
	}
	l, k := ex.Labels, u.Keys
	switch {
	case l[k.ManagedBy] != k.ManagedByValue || l[k.Unit] != u.UnitID:
		return "", fmt.Errorf("%s: a %s of that name exists and is not ebb's unit %q", what, u.Kind, u.UnitID)
	case l[k.Chain] != u.Target.Chain || l[k.Group] != u.Target.Name:
		return "", fmt.Errorf("%s: unit %q exists but belongs to chain %q group %q", what, u.UnitID, l[k.Chain], l[k.Group])
	case ex.Draining:
		return "", fmt.Errorf("%s: unit %q is still draining; a new unit needs a new id", what, u.UnitID)
	}
	return "exists " + u.UnitID, nil
}
