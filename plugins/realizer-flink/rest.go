package flink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// restClient speaks the parts of Flink's JobManager REST API the realizer
// uses (rest_v1_dispatcher.yml). Requests go to the /v1 paths.
type restClient struct {
	base     string
	http     *http.Client
	attempts int
	delay    time.Duration
}

func newRESTClient(base string) *restClient {
	return &restClient{base: strings.TrimSuffix(base, "/") + "/v1", http: &http.Client{Timeout: 30 * time.Second}, attempts: 5, delay: 200 * time.Millisecond}
}

// RESTError is a non-2xx answer with Flink's {"errors":[...]} body.
type RESTError struct {
	Method, Path string
	Status       int
	Errors       []string
}

func (e *RESTError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	// Flink puts a whole stack trace in the body; its first line says what.
	if i := strings.Index(msg, "\n\tat "); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(msg))
}

// has reports whether any error text contains s.
func (e *RESTError) has(s string) bool {
	for _, m := range e.Errors {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func asREST(err error) *RESTError {
	var re *RESTError
	if errors.As(err, &re) {
		return re
	}
	return nil
}

// transientHTTP is a failure worth repeating unchanged: the JobManager not
// reachable (restarting, failing over) or a gateway in front of it.
func transientHTTP(err error) bool {
	if re := asREST(err); re != nil {
		return re.Status == http.StatusBadGateway || re.Status == http.StatusServiceUnavailable || re.Status == http.StatusGatewayTimeout
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// do sends one request, retrying transient failures a bounded number of
// times within ctx, and decodes a 2xx JSON body into out.
func (c *restClient) do(ctx context.Context, method, path string, body any, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
	}
	return c.send(ctx, method, path, func() (io.Reader, string) {
		if payload == nil {
			return nil, ""
		}
		return bytes.NewReader(payload), "application/json"
	}, out)
}

func (c *restClient) send(ctx context.Context, method, path string, body func() (io.Reader, string), out any) error {
	delay := c.delay
	var err error
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, method, path, body, out)
		if err == nil || !transientHTTP(err) || attempt >= c.attempts || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
	return err
}

func (c *restClient) once(ctx context.Context, method, path string, body func() (io.Reader, string), out any) error {
	r, ctype := body()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		re := &RESTError{Method: method, Path: path, Status: resp.StatusCode}
		var eb struct {
			Errors []string `json:"errors"`
		}
		if json.Unmarshal(data, &eb) == nil {
			re.Errors = eb.Errors
		} else if len(data) > 0 {
			re.Errors = []string{strings.TrimSpace(string(data[:min(len(data), 300)]))}
		}
		return re
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// version reads flink-version from GET /config.
func (c *restClient) version(ctx context.Context) (string, int, int, error) {
	var cfg struct {
		Version string `json:"flink-version"`
	}
	if err := c.do(ctx, http.MethodGet, "/config", nil, &cfg); err != nil {
		return "", 0, 0, err
	}
	major, minor, err := parseFlinkVersion(cfg.Version)
	return cfg.Version, major, minor, err
}

func parseFlinkVersion(v string) (int, int, error) {
	parts := strings.SplitN(strings.SplitN(v, "-", 2)[0], ".", 3)
	if len(parts) >= 2 {
		major, err1 := strconv.Atoi(parts[0])
		minor, err2 := strconv.Atoi(parts[1])
		if err1 == nil && err2 == nil {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("flink version %q: not major.minor[.patch]", v)
}

// configMap reads a [{key, value}] configuration listing.
func (c *restClient) configMap(ctx context.Context, path string) (map[string]string, error) {
	var entries []struct{ Key, Value string }
	if err := c.do(ctx, http.MethodGet, path, nil, &entries); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.Key] = e.Value
	}
	return out, nil
}

type jobOverview struct {
	ID               string         `json:"jid"`
	Name             string         `json:"name"`
	State            string         `json:"state"`
	StartTime        int64          `json:"start-time"`
	LastModification int64          `json:"last-modification"`
	Tasks            map[string]int `json:"tasks"`
}

func (c *restClient) jobs(ctx context.Context) ([]jobOverview, error) {
	var out struct {
		Jobs []jobOverview `json:"jobs"`
	}
	err := c.do(ctx, http.MethodGet, "/jobs/overview", nil, &out)
	return out.Jobs, err
}

type jobDetails struct {
	ID       string          `json:"jid"`
	Name     string          `json:"name"`
	State    string          `json:"state"`
	Vertices []vertexDetails `json:"vertices"`
}

type vertexDetails struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Parallelism    int    `json:"parallelism"`
	MaxParallelism int    `json:"maxParallelism"`
}

func (c *restClient) job(ctx context.Context, id string) (jobDetails, error) {
	var out jobDetails
	err := c.do(ctx, http.MethodGet, "/jobs/"+id, nil, &out)
	return out, err
}

type subtask struct {
	Index  int    `json:"subtask"`
	Status string `json:"status"`
	Start  int64  `json:"start-time"`
}

func (c *restClient) subtasks(ctx context.Context, jobID, vertexID string) ([]subtask, error) {
	var out struct {
		Subtasks []subtask `json:"subtasks"`
	}
	err := c.do(ctx, http.MethodGet, "/jobs/"+jobID+"/vertices/"+vertexID, nil, &out)
	return out.Subtasks, err
}

// requirements is JobResourceRequirementsBody.
type requirements map[string]struct {
	Parallelism bound `json:"parallelism"`
}

type bound struct {
	Lower int `json:"lowerBound"`
	Upper int `json:"upperBound"`
}

// slotsPerTaskManager reads the slot count of the first TaskManager, else
// taskmanager.numberOfTaskSlots of the cluster, else 1 (Flink's default).
func (c *restClient) slotsPerTaskManager(ctx context.Context) (int, error) {
	var tms struct {
		TaskManagers []struct {
			Slots int `json:"slotsNumber"`
		} `json:"taskmanagers"`
	}
	if err := c.do(ctx, http.MethodGet, "/taskmanagers", nil, &tms); err != nil {
		return 0, err
	}
	if len(tms.TaskManagers) > 0 && tms.TaskManagers[0].Slots > 0 {
		return tms.TaskManagers[0].Slots, nil
	}
	cfg, err := c.configMap(ctx, "/jobmanager/config")
	if err != nil {
		return 0, err
	}
	if n, err := strconv.Atoi(cfg["taskmanager.numberOfTaskSlots"]); err == nil && n > 0 {
		return n, nil
	}
	return 1, nil
}

// uploadJar sends a jar as multipart "jarfile" (JarUploadHandler) and
// returns its id, the file name of the stored jar.
func (c *restClient) uploadJar(ctx context.Context, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading jar-path: %w", err)
	}
	var out struct {
		Filename string `json:"filename"`
		Status   string `json:"status"`
	}
	err = c.send(ctx, http.MethodPost, "/jars/upload", func() (io.Reader, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		part, _ := mw.CreateFormFile("jarfile", filepath.Base(path))
		_, _ = part.Write(data)
		_ = mw.Close()
		return &buf, mw.FormDataContentType()
	}, &out)
	if err != nil {
		return "", err
	}
	if out.Status != "success" || out.Filename == "" {
		return "", fmt.Errorf("POST /jars/upload: status %q", out.Status)
	}
	return filepath.Base(out.Filename), nil
}
