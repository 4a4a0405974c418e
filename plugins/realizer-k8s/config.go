package k8s

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/internal/optargs"
	"github.com/ebbscale/ebb/sdk"
)

// Modes of the realizer.
const (
	// ModeUnit manages one Deployment per Amoro optimizer unit.
	ModeUnit = "unit"
	// ModeWorkload rescales an existing resource through its scale subresource.
	ModeWorkload = "workload"
)

// Config is the plugin's `config { }` block.
type Config struct {
	kubeapi.Conn
	Mode string `json:"mode"`

	// Unit mode.
	Image             string       `json:"image"`
	ImagePullPolicy   string       `json:"image-pull-policy"`
	AMSThriftURI      string       `json:"ams-thrift-uri"`
	MemoryPerThreadMB float64      `json:"memory-per-thread-mb"`
	CPUPerThread      float64      `json:"cpu-per-thread"`
	HeapRatio         float64      `json:"heap-ratio"`
	PodTemplate       string       `json:"pod-template"`
	DrainTimeout      sdk.Duration `json:"drain-timeout"`
	NamePrefix        string       `json:"name-prefix"`
	// OptimizerVersion is the Amoro version of the image; empty means
	// "read it from the image tag".
	OptimizerVersion string   `json:"optimizer-version"`
	MasterSlaveMode  bool     `json:"master-slave-mode"`
	ImagePullSecrets []string `json:"image-pull-secrets"`

	// Workload mode.
	ThreadsPerReplica float64 `json:"threads-per-replica"`
}

// configSchema is published in Info; its defaults are what the runner fills in.
func configSchema() sdk.Schema {
	return sdk.Schema{Attributes: append(kubeapi.ConnAttributes("of the units (unit mode) or of the scale target (workload mode)"), []sdk.Attribute{
		{Name: "mode", Type: sdk.TypeString, Default: ModeUnit, Description: `"unit": one Deployment per Amoro optimizer unit; "workload": replicas of any resource with a scale subresource.`},
		{Name: "image", Type: sdk.TypeString, Description: "Optimizer image (unit mode, required there)."},
		{Name: "image-pull-policy", Type: sdk.TypeString, Default: "IfNotPresent", Description: "Always, IfNotPresent or Never."},
		{Name: "ams-thrift-uri", Type: sdk.TypeString, Description: "AMS optimizing service, passed to the optimizer as -a, e.g. thrift://ams:1261 (unit mode, required there)."},
		{Name: "memory-per-thread-mb", Type: sdk.TypeNumber, Default: 1024, Description: "Pod memory per optimizer thread in MiB, as Amoro's group property `memory` (requests = limits)."},
		{Name: "cpu-per-thread", Type: sdk.TypeNumber, Default: 1, Description: "CPU per thread, as Amoro's `cpu.factor`: pod cpu = ceil(cpu-per-thread * threads)."},
		{Name: "heap-ratio", Type: sdk.TypeNumber, Default: 0.8, Description: "JVM heap as a share of pod memory, as Amoro's `extra.jvm.heap.ratio`."},
		{Name: "pod-template", Type: sdk.TypeString, Description: "Pod template as YAML (a PodTemplate, or a PodTemplateSpec with metadata and spec), or the path of such a file. ebb fills in the first container and its labels."},
		{Name: "drain-timeout", Type: sdk.TypeDuration, Default: "15m", Description: "How long a draining unit may finish in-flight work. Optimizer >= 0.9: passed as -st (ms) and pods get terminationGracePeriodSeconds = drain-timeout + 30s, as Amoro derives it. 0.8: the unit is marked draining and deleted once it holds no task. A unit draining longer is removed with force."},
		{Name: "name-prefix", Type: sdk.TypeString, Default: "ebb-optimizer-", Description: "Deployment name = name-prefix + unit id."},
		{Name: "optimizer-version", Type: sdk.TypeString, Default: "", Description: `Amoro version of the optimizer image ("0.8.1", "0.9"); empty reads it from the image tag. It decides the flags (-st, -msm exist from 0.9.0) and how a unit drains.`},
		{Name: "master-slave-mode", Type: sdk.TypeBool, Default: false, Description: "AMS runs with ha.use-master-slave-mode: optimizers get -msm, as Amoro adds it (optimizer >= 0.9)."},
		{Name: "image-pull-secrets", Type: sdk.TypeListString, Default: []string{}, Description: "Names of Secrets for pulling the image (Amoro's imagePullSecrets); added to the pod template's own."},
		{Name: "threads-per-replica", Type: sdk.TypeNumber, Default: 1, Description: "Workload mode: replicas = ceil(desired capacity in threads / threads-per-replica)."},
	}...)}
}

// defaultConfig mirrors the schema defaults, so a Configure with a sparse
// object (tests, a third-party runner) behaves like one the runner filled in.
func defaultConfig() Config {
	return Config{
		Conn:              kubeapi.Conn{Namespace: "default"},
		Mode:              ModeUnit,
		ImagePullPolicy:   string(corev1.PullIfNotPresent),
		MemoryPerThreadMB: 1024,
		CPUPerThread:      1,
		HeapRatio:         0.8,
		DrainTimeout:      sdk.Duration(15 * time.Minute),
		NamePrefix:        "ebb-optimizer-",
		ImagePullSecrets:  []string{},
		ThreadsPerReplica: 1,
	}
}

func parseConfig(raw json.RawMessage) (Config, error) {
	cfg := defaultConfig()
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c Config) validate() error {
	errs := c.Conn.Validate()
	switch c.Mode {
	case ModeUnit:
		if c.Image == "" {
			errs = append(errs, errors.New("image is required in unit mode"))
		}
		if c.AMSThriftURI == "" {
			errs = append(errs, errors.New("ams-thrift-uri is required in unit mode"))
		}
		if err := c.validateTemplateKnobs(); err != nil {
			errs = append(errs, err)
		}
		for _, name := range c.ImagePullSecrets {
			if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("image-pull-secrets: %q is not a Secret name: %s", name, strings.Join(msgs, "; ")))
			}
		}
		if _, err := loadPodTemplate(c.PodTemplate); err != nil {
			errs = append(errs, err)
		}
	case ModeWorkload:
		if c.ThreadsPerReplica <= 0 {
			errs = append(errs, fmt.Errorf("threads-per-replica must be positive, got %v", c.ThreadsPerReplica))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeUnit, ModeWorkload))
	}
	return errors.Join(errs...)
}

// validateTemplateKnobs checks the settings that config overrides may change.
func (c Config) validateTemplateKnobs() error {
	var errs []error
	if c.MemoryPerThreadMB <= 0 {
		errs = append(errs, fmt.Errorf("memory-per-thread-mb must be positive, got %v", c.MemoryPerThreadMB))
	}
	if c.CPUPerThread <= 0 {
		errs = append(errs, fmt.Errorf("cpu-per-thread must be positive, got %v", c.CPUPerThread))
	}
	if c.HeapRatio <= 0 || c.HeapRatio > 1 {
		errs = append(errs, fmt.Errorf("heap-ratio must be in (0, 1], got %v", c.HeapRatio))
	}
	switch corev1.PullPolicy(c.ImagePullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("image-pull-policy %q: want Always, IfNotPresent or Never", c.ImagePullPolicy))
	}
	if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(c.NamePrefix, "-") + "-x"); c.NamePrefix != "" && len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("name-prefix %q: %s", c.NamePrefix, strings.Join(msgs, "; ")))
	}
	if c.Image != "" {
		if _, err := c.version(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// minDrainTimeout: the optimizer's -st is in milliseconds and a shorter
// budget would interrupt in-flight tasks at once; for 0.8 the drain is
// judged once per evaluation round.
const minDrainTimeout = time.Second

// version is the optimizer's Amoro version, and whether the settings can be
// honoured by it: -st and -msm exist from 0.9.0, and an optimizer whose
// version is unknown might reject them (args4j refuses unknown options, so
// the pod would print usage and exit).
func (c Config) version() (optargs.Version, error) {
	var v optargs.Version
	if c.OptimizerVersion != "" {
		var err error
		if v, err = optargs.ParseVersion(c.OptimizerVersion); err != nil {
			return v, fmt.Errorf("optimizer-version: %w", err)
		}
	} else {
		var ok bool
		if v, ok = optargs.FromImage(c.Image); !ok {
			return v, fmt.Errorf("image %q: its tag does not say which Amoro version the optimizer is, and the command line "+
				"and the drain depend on it (-st and graceful shutdown exist from 0.9.0): set optimizer-version, e.g. \"0.9\" or \"0.8.1\"", c.Image)
		}
	}
	var errs []error
	if d := c.DrainTimeout.D(); d < minDrainTimeout {
		errs = append(errs, fmt.Errorf("drain-timeout %s: the optimizer cannot finish in-flight tasks in less than %s", d, minDrainTimeout))
	} else if d%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %s: the optimizer's shutdown timeout (-st) is whole milliseconds", d))
	}
	if c.MasterSlaveMode && !optargs.Accepts(v, "-msm") {
		errs = append(errs, fmt.Errorf("master-slave-mode: the Amoro %s optimizer has no -msm option (it arrived in %s)", v, optargs.V09))
	}
	return v, errors.Join(errs...)
}

// overridableKeys are the config keys a config override may change: those
// that shape the template of new units. Changing them never touches running
// units, whose pods would otherwise restart and lose in-flight work.
var overridableKeys = []string{"image", "image-pull-policy", "ams-thrift-uri", "memory-per-thread-mb", "cpu-per-thread", "heap-ratio"}

// withOverrides returns c with config overrides applied.
func (c Config) withOverrides(ov map[string]string) (Config, error) {
	out := c
	for k, v := range ov {
		var err error
		switch k {
		case "image":
			out.Image = v
		case "image-pull-policy":
			out.ImagePullPolicy = v
		case "ams-thrift-uri":
			out.AMSThriftURI = v
		case "memory-per-thread-mb":
			out.MemoryPerThreadMB, err = strconv.ParseFloat(v, 64)
		case "cpu-per-thread":
			out.CPUPerThread, err = strconv.ParseFloat(v, 64)
		case "heap-ratio":
			out.HeapRatio, err = strconv.ParseFloat(v, 64)
		default:
			return Config{}, fmt.Errorf("config override %q is not supported (supported: %s)", k, strings.Join(overridableKeys, ", "))
		}
		if err != nil {
			return Config{}, fmt.Errorf("config override %s=%q: not a number", k, v)
		}
	}
	if out.Image == "" || out.AMSThriftURI == "" {
		return Config{}, errors.New("config overrides must not empty image or ams-thrift-uri")
	}
	if err := out.validateTemplateKnobs(); err != nil {
		return Config{}, fmt.Errorf("config overrides: %w", err)
	}
	return out, nil
}

// loadPodTemplate reads the pod-template setting: YAML text, or the path of a
// YAML file. A value with a line break or a colon is YAML; anything else must be
// an existing file, so a mistyped path is an error rather than an empty template.
func loadPodTemplate(v string) (*corev1.PodTemplateSpec, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	data := []byte(v)
	source := "pod-template"
	if !strings.ContainsAny(v, "\n:") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("pod-template: reading file: %w", err)
		}
		data, source = b, "pod-template file "+v
	}
	// A PodTemplate has its spec under `template`; a PodTemplateSpec is the
	// template itself. Accept either: Amoro's podTemplate is the former.
	var probe map[string]any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", source, err)
	}
	if probe == nil {
		return nil, fmt.Errorf("%s: empty document", source)
	}
	if _, ok := probe["template"]; ok {
		var pt corev1.PodTemplate
		if err := yaml.UnmarshalStrict(data, &pt); err != nil {
			return nil, fmt.Errorf("%s: not a PodTemplate: %w", source, err)
		}
		return &pt.Template, nil
	}
	var spec corev1.PodTemplateSpec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: not a PodTemplateSpec: %w", source, err)
	}
	return &spec, nil
}
