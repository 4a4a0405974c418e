package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// oldRealizer is a realizer written before TargetIdentity existed.
type oldRealizer struct{}

func (oldRealizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "old", Version: "1", ProtocolVersion: sdk.ProtocolVersion}, nil
}
func (oldRealizer) Configure(context.Context, json.RawMessage) error            { return nil }
func (oldRealizer) Inventory(context.Context, sdk.Target) ([]sdk.Unit, error)   { return nil, nil }
func (oldRealizer) Realize(context.Context, sdk.RealizeRequest) (string, error) { return "", nil }
func (oldRealizer) RealizeConfigOverrides(context.Context, sdk.OverridesRequest[string]) (string, error) {
	return "", nil
}
func (oldRealizer) RealizeParallelismOverrides(context.Context, sdk.OverridesRequest[int64]) (string, error) {
	return "", nil
}

// namingRealizer implements the hook.
type namingRealizer struct{ oldRealizer }

func (namingRealizer) TargetIdentity(_ context.Context, cfg json.RawMessage, target string) (string, error) {
	var c struct{ Namespace string }
	if err := json.Unmarshal(cfg, &c); err != nil {
		return "", err
	}
	return c.Namespace + "/" + target, nil
}

func TestTargetIdentityOverTheWire(t *testing.T) {
	ctx := context.Background()
	old := sdktest.InProcess(t, oldRealizer{}).(sdk.TargetIdentifier)
	if _, err := old.TargetIdentity(ctx, []byte(`{}`), "g"); !errors.Is(err, sdk.ErrNoTargetIdentity) {
		t.Fatalf("a realizer without the hook: %v, want ErrNoTargetIdentity", err)
	}
	named := sdktest.InProcess(t, namingRealizer{}).(sdk.TargetIdentifier)
	if id, err := named.TargetIdentity(ctx, []byte(`{"Namespace":"prod"}`), "g"); err != nil || id != "prod/g" {
		t.Fatalf("identity %q, %v", id, err)
	}
	if _, err := named.TargetIdentity(ctx, []byte(`not json`), "g"); err == nil || errors.Is(err, sdk.ErrNoTargetIdentity) {
		t.Fatalf("a failing hook: %v", err)
	}
}
