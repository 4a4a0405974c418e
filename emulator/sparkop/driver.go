package sparkop

import (
	"slices"
	"sync"
	"time"
)

// Driver runs the driver of an application.
type Driver interface {
	// Start runs mainClass with args; grace is the pod's termination grace.
	Start(app, mainClass string, args []string, grace time.Duration) (Proc, error)
}

// Proc is a running driver.
type Proc interface {
	Running() bool
	// Stop asks the driver to finish (SIGTERM).
	Stop()
	// Kill ends it now (SIGKILL).
	Kill()
}

// FakeDriver runs drivers that do nothing and run until stopped or killed.
type FakeDriver struct {
	mu      sync.Mutex
	Started []FakeStart
}

// FakeStart records one driver start.
type FakeStart struct {
	App, MainClass string
	Args           []string
}

// Start implements Driver.
func (f *FakeDriver) Start(app, mainClass string, args []string, _ time.Duration) (Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Started = append(f.Started, FakeStart{App: app, MainClass: mainClass, Args: slices.Clone(args)})
	return &fakeProc{}, nil
}

// Starts returns the driver starts so far.
func (f *FakeDriver) Starts() []FakeStart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Started)
}

type fakeProc struct {
	mu   sync.Mutex
	done bool
}

func (p *fakeProc) Running() bool { p.mu.Lock(); defer p.mu.Unlock(); return !p.done }
func (p *fakeProc) Stop()         { p.Kill() }
func (p *fakeProc) Kill()         { p.mu.Lock(); p.done = true; p.mu.Unlock() }
