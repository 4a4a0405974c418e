package ams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OptimizerClient calls the emulator's optimizer API, one method per Thrift
// OptimizingService method (amoro.md §2.2).
type OptimizerClient struct {
	base string
	hc   *http.Client
}

// NewOptimizerClient talks to the emulator at baseURL (scheme://host:port).
// A nil hc gets a client with a 10 s timeout.
func NewOptimizerClient(baseURL string, hc *http.Client) *OptimizerClient {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &OptimizerClient{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

type callResponse struct {
	Code      int             `json:"code"`
	Message   string          `json:"message"`
	Exception string          `json:"exception"`
	Result    json.RawMessage `json:"result"`
}

func (c *OptimizerClient) call(ctx context.Context, method string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encoding request: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+OptimizerAPIPrefix+"/"+method, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s: reading response: %w", method, err)
	}
	var r callResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: HTTP %d, malformed response: %w", method, resp.StatusCode, err)
	}
	if r.Code != 200 {
		if r.Exception != "" {
			return &ServiceError{Exception: r.Exception, Message: r.Message}
		}
		return fmt.Errorf("%s: code %d: %s", method, r.Code, r.Message)
	}
	if out != nil && len(r.Result) > 0 && string(r.Result) != "null" {
		if err := json.Unmarshal(r.Result, out); err != nil {
			return fmt.Errorf("%s: malformed result: %w", method, err)
		}
	}
	return nil
}

// Authenticate registers and returns the token.
func (c *OptimizerClient) Authenticate(ctx context.Context, info RegisterInfo) (string, error) {
	var token string
	if err := c.call(ctx, "authenticate", optimizerCall{RegisterInfo: &info}, &token); err != nil {
		return "", err
	}
	if token == "" {
		return "", errors.New("authenticate: empty token")
	}
	return token, nil
}

// Touch sends a heartbeat.
func (c *OptimizerClient) Touch(ctx context.Context, token string) error {
	return c.call(ctx, "touch", optimizerCall{AuthToken: token}, nil)
}

// PollTask asks for a task for one thread; nil means nothing to do now.
func (c *OptimizerClient) PollTask(ctx context.Context, token string, threadID int32) (*OptimizingTask, error) {
	var t *OptimizingTask
	if err := c.call(ctx, "pollTask", optimizerCall{AuthToken: token, ThreadID: threadID}, &t); err != nil {
		return nil, err
	}
	return t, nil
}

// AckTask confirms the thread starts the task.
func (c *OptimizerClient) AckTask(ctx context.Context, token string, threadID int32, id TaskID) error {
	return c.call(ctx, "ackTask", optimizerCall{AuthToken: token, ThreadID: threadID, TaskID: &id}, nil)
}

// CompleteTask reports the outcome; a non-empty ErrorMessage fails the task.
func (c *OptimizerClient) CompleteTask(ctx context.Context, token string, res TaskResult) error {
	return c.call(ctx, "completeTask", optimizerCall{AuthToken: token, TaskResult: &res}, nil)
}

// OptimizerOptions configures RunOptimizer, mirroring the optimizer command
// line `-a <ams> -g <group> -p <threads> -id <unit> -hb <ms> -st <ms>`
// (amoro.md §3.1).
type OptimizerOptions struct {
	BaseURL  string
	Group    string
	UnitID   string
	Threads  int
	MemoryMB int
	// HeartbeatInterval is -hb; default 10 s.
	HeartbeatInterval time.Duration
	// PollInterval is the wait after an empty poll; default 1 s. (AMS holds
	// a poll up to optimizer.polling-timeout instead; the emulator answers
	// at once.)
	PollInterval time.Duration
	// ShutdownTimeout is -st, the drain budget; default 10 min
	// (shutdown-timeout-ms 600000, amoro.md §1.2).
	ShutdownTimeout time.Duration
	Clock           SleepClock
	HTTPClient      *http.Client
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
	// Fail, if set, decides a task's error message ("" = success); tests
	// use it to exercise FAILED and retries.
	Fail func(OptimizingTask) string
}

// RunOptimizer is an emulated optimizer process. It authenticates with the
// unit id, heartbeats, and runs Threads poll loops that ack each task, wait
// its duration on the clock and complete it. When ctx is cancelled (what
// SIGTERM does to a real optimizer, amoro.md §3.3 and #4197) it stops
// polling, finishes the tasks it holds within ShutdownTimeout while still
// heartbeating without re-registering, and returns. It returns an error if it
// could not register or had to abandon tasks.
func RunOptimizer(ctx context.Context, o OptimizerOptions) error {
	if o.Threads < 1 {
		return fmt.Errorf("optimizer %q: threads must be at least 1", o.UnitID)
	}
	if o.Group == "" || o.BaseURL == "" {
		return errors.New("optimizer: base URL and group are required")
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := NewOptimizerClient(o.BaseURL, o.HTTPClient)
	info := RegisterInfo{
		ResourceID: o.UnitID, ThreadCount: int32(o.Threads), MemoryMB: int32(o.MemoryMB),
		StartTime: o.Clock.Now().UnixMilli(), GroupName: o.Group,
		Properties: map[string]string{HeartbeatIntervalProperty: strconv.FormatInt(o.HeartbeatInterval.Milliseconds(), 10)},
	}
	if o.UnitID != "" {
		// Amoro optimizers register their job id; for an emulated
		// process the unit id is as good as a PID (amoro.md §1.1).
		info.Properties["job-id"] = o.UnitID
	}
	var token string
	for {
		t, err := c.Authenticate(ctx, info)
		if err == nil {
			token = t
			break
		}
		var se *ServiceError
		if errors.As(err, &se) {
			return fmt.Errorf("optimizer %q: authenticate: %w", o.UnitID, err)
		}
		logf("authenticate failed, retrying: %v", err)
		if !sleepOn(ctx, o.Clock, o.PollInterval) {
			return fmt.Errorf("optimizer %q: never registered: %w", o.UnitID, err)
		}
	}
	logf("registered unit %s with %d threads", o.UnitID, o.Threads)

	r := &optimizerRun{opts: o, c: c, info: info, token: token, logf: logf, hardStop: make(chan struct{})}
	// Calls made while draining must outlive the cancelled context.
	bg := context.WithoutCancel(ctx)
	hbDone := make(chan struct{})
	stopHB := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.heartbeat(ctx, bg, stopHB)
	}()
	var wg sync.WaitGroup
	for i := 0; i < o.Threads; i++ {
		wg.Add(1)
		go func(th int32) {
			defer wg.Done()
			r.thread(ctx, bg, th)
		}(int32(i))
	}
	threadsDone := make(chan struct{})
	go func() { wg.Wait(); close(threadsDone) }()

	var err error
	select {
	case <-threadsDone:
	case <-ctx.Done():
		select {
		case <-threadsDone:
		case <-o.Clock.After(o.ShutdownTimeout):
			close(r.hardStop)
			<-threadsDone
			err = fmt.Errorf("optimizer %q: shutdown timeout %s passed with tasks still running", o.UnitID, o.ShutdownTimeout)
		}
	}
	close(stopHB)
	<-hbDone
	logf("optimizer %s stopped", o.UnitID)
	return err
}

type optimizerRun struct {
	opts     OptimizerOptions
	c        *OptimizerClient
	info     RegisterInfo
	logf     func(string, ...any)
	hardStop chan struct{}

	mu    sync.Mutex
	token string
}

func (r *optimizerRun) currentToken() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.token
}

func sleepOn(ctx context.Context, clk SleepClock, d time.Duration) bool {
	select {
	case <-clk.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// heartbeat touches every interval. An unknown token means AMS expired us:
// register again, unless draining (OptimizerToucher's drain mode, #4197).
func (r *optimizerRun) heartbeat(ctx, bg context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-r.opts.Clock.After(r.opts.HeartbeatInterval):
		}
		err := r.c.Touch(bg, r.currentToken())
		if err == nil {
			continue
		}
		if IsRetryAuth(err) && ctx.Err() == nil {
			t, aerr := r.c.Authenticate(bg, r.info)
			if aerr == nil {
				r.mu.Lock()
				r.token = t
				r.mu.Unlock()
				r.logf("re-registered after expiry")
				continue
			}
			err = aerr
		}
		r.logf("heartbeat failed: %v", err)
	}
}

func (r *optimizerRun) thread(ctx, bg context.Context, th int32) {
	for ctx.Err() == nil {
		token := r.currentToken()
		// A poll is not cancelled half-way: AMS may already have
		// scheduled the task it answers with, and abandoning the answer
		// would leave that task SCHEDULED until task-ack-timeout. A
		// cancelled optimizer stops polling at the loop's check and
		// finishes what a poll in flight gave it.
		t, err := r.c.PollTask(bg, token, th)
		if err != nil || t == nil {
			if err != nil && ctx.Err() == nil {
				r.logf("thread %d: poll: %v", th, err)
			}
			if !sleepOn(ctx, r.opts.Clock, r.opts.PollInterval) {
				return
			}
			continue
		}
		if err := r.c.AckTask(bg, token, th, t.TaskID); err != nil {
			r.logf("thread %d: ack %s refused, skipping: %v", th, t.TaskID, err)
			continue
		}
		d, err := t.Duration()
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			// A held task is finished even after ctx is cancelled; only
			// the shutdown timeout cuts it short.
			select {
			case <-r.opts.Clock.After(d):
			case <-r.hardStop:
				r.logf("thread %d: abandoning task %s at shutdown timeout", th, t.TaskID)
				return
			}
		}
		if msg == "" && r.opts.Fail != nil {
			msg = r.opts.Fail(*t)
		}
		if err := r.c.CompleteTask(bg, token, TaskResult{TaskID: t.TaskID, ThreadID: th, ErrorMessage: msg}); err != nil {
			r.logf("thread %d: complete %s: %v", th, t.TaskID, err)
		}
	}
}
