package sdk

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// Serve runs a plugin process: it answers the runner over gRPC until the
// runner goes away. A plugin's main is
//
//	func main() { sdk.Serve(myplugin.New()) }
func Serve(impl Plugin) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         pluginSet(impl),
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          Logger(""),
	})
}

// Logger returns the logger a plugin should log with: JSON on stderr, which
// the runner reads back and folds into its own log with the plugin's name.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.Trace,
	})
}

// LaunchOptions says how to start a plugin process.
type LaunchOptions struct {
	// Kind to dispense. KindUnknown is allowed when only Info is needed
	// (listing plugins): every plugin serves the common Plugin service.
	Kind Kind
	// SHA256 pins the binary; empty means not pinned.
	SHA256 []byte
	Logger hclog.Logger
	// StartTimeout bounds how long the process may take to say it is ready.
	StartTimeout time.Duration
}

// Process is a running plugin process and the client talking to it.
type Process struct {
	client *goplugin.Client
	// Plugin is a Collector, Evaluator or Realizer according to the Kind
	// asked for.
	Plugin Plugin
}

// Launch starts cmd as a plugin process over gRPC with mutual TLS and returns
// a client for it. The caller must Kill it.
func Launch(cmd *exec.Cmd, opts LaunchOptions) (*Process, error) {
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           quietLifecycle{logger},
		StartTimeout:     opts.StartTimeout,
		// Plugins write logs on stderr; anything else they print is kept
		// out of the runner's own output.
		SyncStdout: logWriter{logger},
		SyncStderr: logWriter{logger},
	}
	if len(opts.SHA256) > 0 {
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: opts.SHA256, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if e := notAPlugin(cmd.Path, err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("starting plugin %s: %w", cmd.Path, err)
	}
	kind := opts.Kind
	if kind == KindUnknown {
		kind = KindCollector
	}
	raw, err := rpc.Dispense(kind.String())
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: %w", cmd.Path, err)
	}
	p, ok := raw.(Plugin)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: dispensed %T, not a plugin", cmd.Path, raw)
	}
	return &Process{client: client, Plugin: p}, nil
}

// Exited is true once the process has stopped, for whatever reason.
func (p *Process) Exited() bool { return p.client.Exited() }

// Pid is the operating system's id of the plugin process, 0 if unknown.
func (p *Process) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Kill stops the process, gracefully first.
func (p *Process) Kill() { p.client.Kill() }

type logWriter struct{ l hclog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.l.Debug("plugin output", "text", string(b))
	return len(b), nil
}

// PluginSet is the go-plugin set a plugin process serves. It is exported for
// hosts that embed plugins in unusual ways (sdktest's in-process connection);
// plugin authors call Serve instead.
func PluginSet(impl Plugin) goplugin.PluginSet { return pluginSet(impl) }
