package flink

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Modes of the realizer.
const (
	// ModeJob rescales one running job in place through the REST API.
	ModeJob = "job"
	// ModeDeployment changes a FlinkDeployment or FlinkSessionJob of the
	// Flink Kubernetes operator.
	ModeDeployment = "deployment"
	// ModeUnit runs one Amoro Flink optimizer job per unit.
	ModeUnit = "unit"
)

// Unit backends.
const (
	BackendDeployment = "deployment" // a FlinkDeployment in application mode
	BackendSession    = "session"    // a job submitted to a session cluster
)

// Config is the plugin's `config { }` block.
type Config struct {
	Mode    string `json:"mode"`
	RESTURL string `json:"rest-url"`

	// kubeapi.Conn's fields, with descriptions of their own in configSchema.
	kubeapi.Conn

	ThreadsPerSubtask float64  `json:"threads-per-subtask"`
	Vertices          []string `json:"vertices"`
	BalancedTasks     bool     `json:"balanced-tasks"`

	UnitBackend        string            `json:"unit-backend"`
	AMSThriftURI       string            `json:"ams-thrift-uri"`
	JarURI             string            `json:"jar-uri"`
	JarPath            string            `json:"jar-path"`
	Image              string            `json:"image"`
	FlinkVersion       string            `json:"flink-version"`
	ServiceAccount     string            `json:"service-account"`
	JobManagerMemory   string            `json:"jobmanager-memory"`
	MemoryPerThreadMB  float64           `json:"memory-per-thread-mb"`
	CPUPerThread       float64           `json:"cpu-per-thread"`
	FlinkConfiguration map[string]string `json:"flink-configuration"`
	DrainTimeout       sdk.Duration      `json:"drain-timeout"`
	NamePrefix         string            `json:"name-prefix"`
}

func configSchema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "mode", Type: sdk.TypeString, Default: ModeJob, Description: `"job": rescale a running job in place over REST; "deployment": a FlinkDeployment or FlinkSessionJob of the Flink Kubernetes operator; "unit": one Amoro Flink optimizer job per unit.`},
		{Name: "rest-url", Type: sdk.TypeString, Description: "JobManager REST address, e.g. http://flink-jobmanager:8081 (job mode, session units; optional in deployment mode, where it lets overrides name vertices and align to max parallelism)."},
		{Name: "kubeconfig", Type: sdk.TypeString, Description: "kubeconfig path (deployment mode, deployment units). Empty: $KUBECONFIG, then ~/.kube/config."},
		{Name: "context", Type: sdk.TypeString, Description: "kubeconfig context; empty means its current context."},
		{Name: "in-cluster", Type: sdk.TypeBool, Default: false, Description: "Use the pod's service account."},
		{Name: "namespace", Type: sdk.TypeString, Default: "default", Description: "Namespace of the FlinkDeployments."},
		{Name: "threads-per-subtask", Type: sdk.TypeNumber, Default: 1, Description: "Job mode: threads one subtask provides; parallelism = ceil(desired capacity / this). Deployment mode: threads per TaskManager slot."},
		{Name: "vertices", Type: sdk.TypeListString, Description: "Job mode: the vertices (names or ids) whose parallelism follows the desired capacity; empty: the vertices running at the job's widest parallelism."},
		{Name: "balanced-tasks", Type: sdk.TypeBool, Default: false, Description: "Balanced task scheduling (FLIP-370, Flink 2.2+): taskmanager.load-balance.mode TASKS, and parallelism aligned to TaskManager slots and key groups."},
		{Name: "unit-backend", Type: sdk.TypeString, Default: BackendDeployment, Description: `Unit mode: "deployment" (a FlinkDeployment per unit, application mode) or "session" (a job per unit on the session cluster at rest-url).`},
		{Name: "ams-thrift-uri", Type: sdk.TypeString, Description: "Unit mode: AMS optimizing service, passed as -a (required there)."},
		{Name: "jar-uri", Type: sdk.TypeString, Default: "local:///opt/flink/usrlib/optimizer-job.jar", Description: "Deployment units: spec.job.jarURI of the optimizer job jar."},
		{Name: "jar-path", Type: sdk.TypeString, Description: "Session units: local path of Amoro's optimizer-job.jar, uploaded unless a jar of that name is on the cluster."},
		{Name: "image", Type: sdk.TypeString, Description: "Deployment units: Flink image with the optimizer jar (required there)."},
		{Name: "flink-version", Type: sdk.TypeString, Default: "v1_20", Description: "Deployment units: spec.flinkVersion, the operator's enum (v1_19, v1_20, v2_0, ...)."},
		{Name: "service-account", Type: sdk.TypeString, Default: "flink", Description: "Deployment units: spec.serviceAccount."},
		{Name: "jobmanager-memory", Type: sdk.TypeString, Default: "1024m", Description: "Deployment units: spec.jobManager.resource.memory."},
		{Name: "memory-per-thread-mb", Type: sdk.TypeNumber, Default: 1024, Description: "Deployment units: TaskManager memory per optimizer thread, MiB."},
		{Name: "cpu-per-thread", Type: sdk.TypeNumber, Default: 1, Description: "Deployment units: TaskManager cpu per thread."},
		{Name: "flink-configuration", Type: sdk.TypeMapString, Description: "Unit mode: extra Flink configuration for each optimizer job."},
		{Name: "drain-timeout", Type: sdk.TypeDuration, Default: "15m", Description: "How long a released unit may finish in-flight tasks; deployment units get task.cancellation.timeout = drain-timeout + 30s, and a unit draining longer is removed with force."},
		{Name: "name-prefix", Type: sdk.TypeString, Default: "ebb-optimizer-", Description: "Deployment units: FlinkDeployment name = name-prefix + unit id."},
	}}
}

func defaultConfig() Config {
	return Config{
		Mode:              ModeJob,
		Conn:              kubeapi.Conn{Namespace: "default"},
		ThreadsPerSubtask: 1,
		UnitBackend:       BackendDeployment,
		JarURI:            "local:///opt/flink/usrlib/optimizer-job.jar",
		FlinkVersion:      "v1_20",
		ServiceAccount:    "flink",
		JobManagerMemory:  "1024m",
		MemoryPerThreadMB: 1024,
		CPUPerThread:      1,
		DrainTimeout:      sdk.Duration(15 * time.Minute),
		NamePrefix:        "ebb-optimizer-",
	}
}

func parseConfig(raw []byte) (Config, error) {
	cfg := defaultConfig()
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, cfg.validate()
}

// needsREST and needsKube say which clients a configuration uses.
func (c Config) needsREST() bool {
	return c.Mode == ModeJob || (c.Mode == ModeUnit && c.UnitBackend == BackendSession)
}

func (c Config) needsKube() bool {
	return c.Mode == ModeDeployment || (c.Mode == ModeUnit && c.UnitBackend == BackendDeployment)
}

func (c Config) validate() error {
	var errs []error
	switch c.Mode {
	case ModeJob, ModeDeployment, ModeUnit:
	default:
		return fmt.Errorf("mode %q: want %q, %q or %q", c.Mode, ModeJob, ModeDeployment, ModeUnit)
	}
	if c.RESTURL != "" {
		if u, err := url.Parse(c.RESTURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("rest-url %q: want http(s)://host:port", c.RESTURL))
		}
	} else if c.needsREST() {
		errs = append(errs, fmt.Errorf("rest-url is required in %s", c.modeName()))
	}
	if c.needsKube() {
		errs = append(errs, c.Conn.Validate()...)
	}
	if c.ThreadsPerSubtask <= 0 {
		errs = append(errs, fmt.Errorf("threads-per-subtask must be positive, got %v", c.ThreadsPerSubtask))
	}
	if c.Mode == ModeUnit {
		errs = append(errs, c.validateUnit()...)
	}
	return errors.Join(errs...)
}

func (c Config) modeName() string {
	if c.Mode == ModeUnit {
		return "unit mode with unit-backend " + c.UnitBackend
	}
	return c.Mode + " mode"
}

func (c Config) validateUnit() []error {
	var errs []error
	if c.AMSThriftURI == "" {
		errs = append(errs, errors.New("ams-thrift-uri is required in unit mode"))
	}
	switch c.UnitBackend {
	case BackendDeployment:
		if c.Image == "" {
			errs = append(errs, errors.New("image is required for deployment units"))
		}
		if _, _, err := operatorVersion(c.FlinkVersion); err != nil {
			errs = append(errs, err)
		}
		if msgs := validation.IsDNS1123Label(c.NamePrefix + "x"); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("name-prefix %q: %s", c.NamePrefix, strings.Join(msgs, "; ")))
		}
	case BackendSession:
		if c.JarPath == "" {
			errs = append(errs, errors.New("jar-path is required for session units"))
		} else if st, err := os.Stat(c.JarPath); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("jar-path %q: not a readable file", c.JarPath))
		}
	default:
		errs = append(errs, fmt.Errorf("unit-backend %q: want %q or %q", c.UnitBackend, BackendDeployment, BackendSession))
	}
	if c.MemoryPerThreadMB <= 0 || c.CPUPerThread <= 0 {
		errs = append(errs, errors.New("memory-per-thread-mb and cpu-per-thread must be positive"))
	}
	for k := range c.FlinkConfiguration {
		if reservedUnitKeys[k] {
			errs = append(errs, fmt.Errorf("flink-configuration %q is set by ebb for each unit", k))
		}
	}
	return errs
}

// reservedUnitKeys are the Flink settings ebb sets on each optimizer job.
var reservedUnitKeys = map[string]bool{
	"taskmanager.numberOfTaskSlots":  true,
	"pipeline.global-job-parameters": true,
	"kubernetes.jobmanager.labels":   true,
	"kubernetes.taskmanager.labels":  true,
	"taskmanager.load-balance.mode":  true,
}
