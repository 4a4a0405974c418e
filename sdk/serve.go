package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
)

// Serve runs a plugin process: it answers the runner over gRPC until the
// runner goes away. A plugin's main is
//
//	func main() { sdk.Serve(myplugin.New()) }
func Serve(impl Plugin) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(impl),
		GRPCServer:       grpcServer,
		Logger:           Logger(""),
	})
}

// A fixed flow-control window, as large as a batch may be, turns off
// gRPC's bandwidth estimator: on a local connection it only adds a ping and
// its ack (two more frames, more syscalls on both sides) to every call.
const flowWindow = 4 << 20

func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow))...)
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
	// Context, when done before the plugin is ready, abandons the start
	// (shutting down must not wait for a plugin that hangs in its start).
	// It has no effect once Launch has returned.
	Context context.Context
}

// Process is a running plugin process and the client talking to it.
type Process struct {
	client *goplugin.Client
	runner *groupRunner
	// Plugin is a Collector, Evaluator or Realizer according to the Kind
	// asked for.
	Plugin Plugin
}

// ErrStartTimeout is a plugin that did not finish its start in time.
var ErrStartTimeout = errors.New("the plugin did not finish its start")

// maxStartError bounds how much of what a plugin printed instead of the
// handshake ends up in an error (and in the chain status that shows it).
const maxStartError = 1024

// Launch starts cmd as a plugin process over gRPC with mutual TLS and returns
// a client for it. The process leads its own process group; Kill ends the
// whole group, and neither Launch nor Kill waits without bound for a process
// that misbehaves. The caller must Kill it.
func Launch(cmd *exec.Cmd, opts LaunchOptions) (*Process, error) {
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	run := newGroupRunner(cmd, opts.SHA256)
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(nil),
		// The pin is checked by the runner, on the binary it starts:
		// go-plugin checks only its own Cmd, which a RunnerFunc replaces.
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			run.prepare(spec)
			return run, nil
		},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  []grpc.DialOption{grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow)},
		Logger:           quietLifecycle{logger},
		StartTimeout:     opts.StartTimeout,
		// Plugins write logs on stderr; anything else they print is kept
		// out of the runner's own output.
		SyncStdout: logWriter{logger},
		SyncStderr: logWriter{logger},
	}
	client := goplugin.NewClient(cfg)
	p := &Process{client: client, runner: run}
	if opts.Context != nil {
		stop := context.AfterFunc(opts.Context, func() { run.Kill(context.Background()) })
		defer stop()
	}
	rpc, err := client.Client()
	if err != nil {
		p.Kill()
		var ctxErr error
		if opts.Context != nil {
			ctxErr = opts.Context.Err()
		}
		switch {
		case errors.Is(ctxErr, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout while waiting for plugin to start"):
			return nil, fmt.Errorf("starting plugin %s: %w: no handshake within %s", cmd.Path, ErrStartTimeout, opts.StartTimeout)
		case ctxErr != nil:
			return nil, fmt.Errorf("starting plugin %s: %w", cmd.Path, ctxErr)
		}
		if e := notAPlugin(cmd.Path, err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("starting plugin %s: %s", cmd.Path, truncate(err.Error(), maxStartError))
	}
	kind := opts.Kind
	if kind == KindUnknown {
		kind = KindCollector
	}
	raw, err := rpc.Dispense(kind.String())
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("plugin %s: %w", cmd.Path, err)
	}
	plugin, ok := raw.(Plugin)
	if !ok {
		p.Kill()
		return nil, fmt.Errorf("plugin %s: dispensed %T, not a plugin", cmd.Path, raw)
	}
	p.Plugin = plugin
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d more bytes)", len(s)-n)
}

// Exited is true once the process has stopped, for whatever reason.
func (p *Process) Exited() bool { return p.runner.Exited() || p.client.Exited() }

// Pid is the operating system's id of the plugin process, 0 if unknown.
func (p *Process) Pid() int { return p.runner.Pid() }

// killWait bounds how long Kill waits for go-plugin to finish with a
// process: its graceful stop waits 2s, then the group is killed and the
// pipes are closed a pipeGrace later.
const killWait = 5 * time.Second

// Kill stops the process group, gracefully first. It returns within a few
// seconds even when something outside the group holds the plugin's pipes.
func (p *Process) Kill() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.client.Kill()
	}()
	select {
	case <-done:
	case <-time.After(killWait):
		p.runner.Kill(context.Background())
	}
}

type logWriter struct{ l hclog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.l.Debug("plugin output", "text", string(b))
	return len(b), nil
}

// PluginSet is the go-plugin set a plugin process serves. It is exported for
// hosts that embed plugins in unusual ways (sdktest's in-process connection);
// plugin authors call Serve instead.
func PluginSet(impl Plugin) goplugin.PluginSet { return pluginSet(impl) }
