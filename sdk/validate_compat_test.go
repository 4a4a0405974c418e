package sdk

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ebbscale/ebb/sdk/proto"
)

// oldPlugin serves the Plugin service as it was before ValidateConfig, as a
// plugin built against an older ebb or written in another language would.
type oldPlugin struct{ pb.UnimplementedPluginServer }

// A plugin that does not serve ValidateConfig finds no problems: loading a
// configuration that uses it still works.
func TestValidateConfigOfAPluginWithoutIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterPluginServer(s, oldPlugin{})
	go s.Serve(ln)
	defer s.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var v ConfigValidator = pluginClient{c: pb.NewPluginClient(conn)}
	problems, err := v.ValidateConfig(context.Background(), []byte(`{"url":"x"}`))
	if err != nil || problems != nil {
		t.Fatalf("old plugin: problems %v, err %v; want none", problems, err)
	}
}
