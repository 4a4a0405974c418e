package spark

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Modes of the realizer.
const (
	// ModeUnit manages one SparkApplication per Amoro Spark optimizer unit.
	ModeUnit = "unit"
	// ModeWorkload resizes the executors of one existing SparkApplication.
	ModeWorkload = "workload"
)

// Amoro's Spark optimizer, as SparkOptimizerContainer submits it
// (amoro-ams/.../server/manager/SparkOptimizerContainer.java), and where
// Amoro's optimizer-spark image puts the job (docker/optimizer-spark/Dockerfile:
// $SPARK_HOME/usrlib/optimizer-job.jar, SPARK_HOME=/opt/spark in apache/spark).
const (
	optimizerMainClass = "org.apache.amoro.optimizer.spark.SparkOptimizer"
	defaultJobURI      = "local:///opt/spark/usrlib/optimizer-job.jar"
)

// Config is the plugin's `config { }` block.
type Config struct {
	kubeapi.Conn
	Mode string `json:"mode"`
	// AllowRestart lets a config override or a workload resize rewrite the
	// spec of a running application, which the spark-operator answers by
	// killing and resubmitting it.
	AllowRestart bool `json:"allow-restart"`

	// Unit mode.
	Image           string            `json:"image"`
	ImagePullPolicy string            `json:"image-pull-policy"`
	AMSThriftURI    string            `json:"ams-thrift-uri"`
	JobURI          string            `json:"job-uri"`
	SparkVersion    string            `json:"spark-version"`
	ServiceAccount  string            `json:"service-account"`
	DriverCores     int64             `json:"driver-cores"`
	DriverMemory    string            `json:"driver-memory"`
	ExecutorMemory  string            `json:"executor-memory"`
	SparkConf       map[string]string `json:"spark-conf"`
	DrainTimeout    sdk.Duration      `json:"drain-timeout"`
	BootTimeout     sdk.Duration      `json:"boot-timeout"`
	NamePrefix      string            `json:"name-prefix"`

	// Both modes: threads one executor runs (spark.executor.cores).
	ExecutorCores int64 `json:"executor-cores"`
}

func configSchema() sdk.Schema {
	return sdk.Schema{Attributes: append(kubeapi.ConnAttributes("of the SparkApplications"), []sdk.Attribute{
		{Name: "mode", Type: sdk.TypeString, Default: ModeUnit, Description: `"unit": one SparkApplication per Amoro Spark optimizer unit; "workload": the executors of one existing SparkApplication (the chain's target).`},
		{Name: "allow-restart", Type: sdk.TypeBool, Default: false, Description: "Allow config overrides and workload resizes that change the spec of a running SparkApplication: the spark-operator then kills and resubmits it. Off: such changes are refused and the decision log says which and why."},
		{Name: "image", Type: sdk.TypeString, Description: "Spark optimizer image, e.g. Amoro's optimizer-spark image (unit mode, required there)."},
		{Name: "image-pull-policy", Type: sdk.TypeString, Default: "IfNotPresent", Description: "Always, IfNotPresent or Never."},
		{Name: "ams-thrift-uri", Type: sdk.TypeString, Description: "AMS optimizing service, passed to the optimizer as -a, e.g. thrift://ams:1261 (unit mode, required there)."},
		{Name: "job-uri", Type: sdk.TypeString, Default: defaultJobURI, Description: "The optimizer job jar (spec.mainApplicationFile), as Amoro's job-uri."},
		{Name: "spark-version", Type: sdk.TypeString, Default: "3.5.7", Description: "spec.sparkVersion of the optimizer applications."},
		{Name: "service-account", Type: sdk.TypeString, Description: "Service account of the driver (it creates the executor pods); empty: the namespace default."},
		{Name: "driver-cores", Type: sdk.TypeNumber, Default: 1, Description: "spec.driver.cores."},
		{Name: "driver-memory", Type: sdk.TypeString, Default: "1g", Description: "spec.driver.memory, in Spark's syntax (512m, 2g)."},
		{Name: "executor-cores", Type: sdk.TypeNumber, Default: 1, Description: "Threads per executor (spec.executor.cores). Unit mode: a unit of T threads may use up to ceil(T / executor-cores) executors. Workload mode: desired threads / executor-cores = executors."},
		{Name: "executor-memory", Type: sdk.TypeString, Default: "1g", Description: "spec.executor.memory, in Spark's syntax."},
		{Name: "spark-conf", Type: sdk.TypeMapString, Default: map[string]string{}, Description: "Spark properties for every unit, as Amoro's spark-conf.* container properties; spark.dynamicAllocation.* keys go to spec.dynamicAllocation."},
		{Name: "drain-timeout", Type: sdk.TypeDuration, Default: "15m", Description: "How long a draining unit may finish in-flight work: the driver gets terminationGracePeriodSeconds = drain-timeout + 30s, and a unit draining longer is removed with force."},
		{Name: "boot-timeout", Type: sdk.TypeDuration, Default: "3m", Description: "A unit whose application the operator has not submitted within this is reported as dead (phase unknown), not as booting."},
		{Name: "name-prefix", Type: sdk.TypeString, Default: "ebb-optimizer-", Description: "SparkApplication name = name-prefix + unit id."},
	}...)}
}

func defaultConfig() Config {
	return Config{
		Conn:            kubeapi.Conn{Namespace: "default"},
		Mode:            ModeUnit,
		ImagePullPolicy: "IfNotPresent",
		JobURI:          defaultJobURI,
		SparkVersion:    "3.5.7",
		DriverCores:     1,
		DriverMemory:    "1g",
		ExecutorCores:   1,
		ExecutorMemory:  "1g",
		SparkConf:       map[string]string{},
		DrainTimeout:    sdk.Duration(15 * time.Minute),
		BootTimeout:     sdk.Duration(3 * time.Minute),
		NamePrefix:      "ebb-optimizer-",
	}
}

func parseConfig(raw []byte) (Config, error) {
	cfg := defaultConfig()
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return Config{}, err
	}
	if cfg.SparkConf == nil {
		cfg.SparkConf = map[string]string{}
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c Config) validate() error {
	errs := c.Conn.Validate()
	if c.ExecutorCores < 1 {
		errs = append(errs, fmt.Errorf("executor-cores must be at least 1, got %d", c.ExecutorCores))
	}
	switch c.Mode {
	case ModeUnit:
		if c.Image == "" {
			errs = append(errs, errors.New("image is required in unit mode"))
		}
		if c.AMSThriftURI == "" {
			errs = append(errs, errors.New("ams-thrift-uri is required in unit mode"))
		}
		if c.JobURI == "" {
			errs = append(errs, errors.New("job-uri must not be empty"))
		}
		if c.DriverCores < 1 {
			errs = append(errs, fmt.Errorf("driver-cores must be at least 1, got %d", c.DriverCores))
		}
		for name, v := range map[string]string{"driver-memory": c.DriverMemory, "executor-memory": c.ExecutorMemory} {
			if err := checkSparkMemory(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		switch c.ImagePullPolicy {
		case "Always", "IfNotPresent", "Never":
		default:
			errs = append(errs, fmt.Errorf("image-pull-policy %q: want Always, IfNotPresent or Never", c.ImagePullPolicy))
		}
		if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(c.NamePrefix, "-") + "-x"); c.NamePrefix != "" && len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("name-prefix %q: %s", c.NamePrefix, strings.Join(msgs, "; ")))
		}
		if _, err := parseOverrides(c.SparkConf); err != nil {
			errs = append(errs, fmt.Errorf("spark-conf: %w", err))
		}
		if c.DrainTimeout.D() < 0 || c.BootTimeout.D() <= 0 {
			errs = append(errs, errors.New("drain-timeout must not be negative and boot-timeout must be positive"))
		}
	case ModeWorkload:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeUnit, ModeWorkload))
	}
	return errors.Join(errs...)
}

// checkSparkMemory accepts Spark's memory strings: a number with an optional
// k, m, g or t suffix (Spark's JavaUtils.byteStringAs), or a Kubernetes
// quantity, which the operator also passes through.
func checkSparkMemory(v string) error {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return errors.New("empty")
	}
	trimmed := strings.TrimRight(strings.TrimSuffix(s, "b"), "kmgtp")
	if trimmed != "" && strings.Trim(trimmed, "0123456789") == "" {
		return nil
	}
	if _, err := resource.ParseQuantity(v); err == nil {
		return nil
	}
	return fmt.Errorf("%q is not a Spark memory size (e.g. 512m, 2g)", v)
}
