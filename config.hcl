# ebb configuration: an example that scales one Amoro optimizer group.
#
# Check it without running anything:   ebb validate config.hcl
# Point it at another cluster:          ebb run config.hcl -var cluster=dev -var realizer=process
#
# Every error is reported as FILE:LINE:COL. The `config { }` of each plugin
# block and the `policy { }` of each chain are checked against the schemas the
# plugins publish, so a misspelled key, a wrong type or a bad duration is
# caught when the file is loaded, not at 3 a.m. when the chain first scales.
#
# Expressions:
#   var.NAME              a variable declared below; -var NAME=VALUE overrides
#                         its default (converted to the default's type).
#   env("X")              the environment variable X ("" when unset);
#   env("X", "fallback")  ... or the fallback when X is unset or empty.
#   file("path")          a text file's contents, relative to this file.
#   lower, upper, trimspace, join, split, concat, coalesce: as in Terraform.
# Durations are strings with a unit: "500ms", "30s", "5m", "1h30m", or as
# Amoro writes them: "1min", "15 min", "1 minute".

# Directory of third-party plugin binaries, relative to this file. Builtin
# plugins (collector-ams, evaluator-dra, realizer-k8s, realizer-flink,
# realizer-spark, realizer-process) need no directory, so this example sets
# none:
# plugin_dir = "/usr/local/lib/ebb/plugins"
# A binary there runs only if it, its directory and plugin_dir are owned by
# ebb's user or root and not group- or world-writable, unless pinned (sha256).

# Evaluator state (idle timers, restart counts, cooldowns) lives here, so a
# restart of ebb or of a plugin loses nothing. Relative to this file;
# defaults to "ebb.db". The decision log keeps per chain at most
# keep_decisions records (default 1000; 100 with the kubernetes backend),
# none older than keep_for (default 7 days); consecutive rounds without
# actions that differ only in figures are kept as one record with a repeat
# count. In a cluster, backend = "kubernetes" keeps it all in ConfigMaps
# instead and lets several replicas share the chains through Leases
# (README, "Several replicas on Kubernetes"):
#   state { backend = "kubernetes"  namespace = "ebb"  in_cluster = true }
state {
  path           = "ebb.db"
  keep_decisions = 1000
  keep_for       = "168h"
}

# HTTP API and Prometheus /metrics. Default "127.0.0.1:9464". With a token
# (here or in $EBB_HTTP_TOKEN) every request but /v1/health needs
# "Authorization: Bearer <token>"; without one, requests must name an IP
# address, localhost or one of allowed_hosts in their Host header.
http {
  address = "127.0.0.1:9464"
  # token         = env("EBB_HTTP_TOKEN")
  # allowed_hosts = ["ebb.monitoring.svc"]
}

# level: trace, debug, info, warn or error. json = true for JSON lines.
log {
  level = "info"
  json  = false
}

# ---------------------------------------------------------------------------
# Variables: what differs between clusters. A variable without a default must
# be given with -var; an -var for a variable not declared here is an error.

variable "cluster" {
  description = "Cluster this runner manages; names the Kubernetes namespace."
  default     = "prod"
}

variable "realizer" {
  description = "Which realizer block carries out decisions: \"k8s\", \"flink\", \"spark\" or \"process\"."
  default     = "k8s"
}

variable "ams_url" {
  description = "Base URL of the Amoro Management Service REST API."
  default     = env("AMS_URL", "http://amoro-ams.amoro.svc:19090")
}

variable "optimizer" {
  description = "What realizer.process starts per unit: \"amoro\" (Amoro's optimizer.sh) or \"emulated\" (ebb emulate optimizer, the local path in the README)."
  default     = "amoro"
}

variable "min_optimizers" {
  description = "Floor of optimizer threads kept up with no work (0: none; -var min_optimizers=4 keeps one unit)."
  default     = 0
}

variable "max_optimizers" {
  description = "Upper bound on optimizer threads for the group (a number: -var max_optimizers=64 works)."
  default     = 32
}

# ---------------------------------------------------------------------------
# Plugin blocks. `collector "NAME"`, `evaluator "NAME"` and `realizer "NAME"`
# each run one plugin process:
#   plugin  = the plugin's name (builtin, or a binary in plugin_dir)
#   sha256  = optional pin of the plugin binary (hex); a mismatch is an error
#   timeout = optional deadline for each call to the plugin
#   config { ... } = the plugin's own settings, checked against its schema
# Chains refer to them as collector.NAME, evaluator.NAME and realizer.NAME.

collector "ams" {
  plugin = "collector-ams"
  # Within the chain's interval (2s below): a collection still running when
  # the next tick comes skips that tick. One group's REST calls take
  # milliseconds; give a platform of thousands of optimizers more time and
  # the chain a longer interval.
  timeout = "2s"

  config {
    url = var.ams_url
    # AMS REST auth: "token" (api key + signed requests), "basic" or "none".
    # Secrets come from the environment, never from this file. They are
    # marked sensitive by the plugin, so logs show "(sensitive)".
    auth-type = env("AMS_API_KEY") == "" ? "none" : "token"
    api-key   = env("AMS_API_KEY")
    secret    = env("AMS_SECRET")
    # An optimizer whose last heartbeat is older than this is not counted.
    heartbeat-timeout = "1m"
    # Optional: AMS's Prometheus exporter, for per-optimizer thread metrics:
    # the host of ams_url on port 7001 (Amoro's Helm chart; ebb emulate ams).
    metrics-url = "${split(":", var.ams_url)[0]}:${split(":", var.ams_url)[1]}:7001/metrics"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
  # sha256 = "4f2a..."   # pins a third-party binary in plugin_dir (builtins need none)
}

# Two ways to realize decisions; var.realizer picks one per cluster (see the
# chain below). Both are validated whichever is picked, so switching is safe.
realizer "k8s" {
  plugin  = "realizer-k8s"
  timeout = "30s"

  config {
    namespace = "amoro-${var.cluster}"
    # "unit": one Deployment per optimizer, Amoro-compatible labels.
    # "workload": the scale subresource of an existing workload.
    mode           = "unit"
    image          = "apache/amoro:0.9.0-incubating"
    ams-thrift-uri = "thrift://amoro-ams.amoro.svc:1261"
    # The optimizer's Amoro version decides its flags and how it drains;
    # it is read from the image tag. Set it for a tag without one:
    # optimizer-version = "0.9"
    # AMS with ha.use-master-slave-mode: optimizers get -msm (>= 0.9).
    # master-slave-mode = true
    # image-pull-secrets = ["regcred"]
    # Pod resources per optimizer thread, as Amoro computes them.
    memory-per-thread-mb = 2048
    cpu-per-thread       = 1
    # Optimizer >= 0.9 finishes its in-flight tasks on SIGTERM: it gets
    # -st <drain-timeout in ms> and pods terminationGracePeriodSeconds =
    # drain-timeout + 30s, as Amoro derives them. An 0.8 optimizer never
    # sees SIGTERM: its unit is marked draining and deleted once the
    # collector shows it holds no task, or at the drain timeout.
    drain-timeout = "15m"
  }
}

# The same optimizers as Flink jobs (Amoro's Flink optimizer): one
# FlinkDeployment per unit, run by the Flink Kubernetes operator.
#   -var realizer=flink
realizer "flink" {
  plugin  = "realizer-flink"
  timeout = "30s"

  config {
    namespace = "amoro-${var.cluster}"
    # "unit": one optimizer job per unit ("deployment": a FlinkDeployment in
    # application mode; "session": a job on the session cluster at rest-url).
    # "job" rescales one running job in place; "deployment" patches a
    # FlinkDeployment's overrides and TaskManager count.
    mode           = "unit"
    unit-backend   = "deployment"
    image          = "apache/amoro-flink-optimizer:0.8.1"
    flink-version  = "v1_20"
    ams-thrift-uri = "thrift://amoro-ams.amoro.svc:1261"
    memory-per-thread-mb = 2048
    # Released optimizers get task.cancellation.timeout = drain-timeout + 30s
    # to finish their tasks.
    drain-timeout = "15m"
  }
}

realizer "process" {
  plugin = "realizer-process"

  config {
    # Local optimizer processes, for a single VM, started as Amoro's own
    # local container does. The command must stay in the foreground: it is
    # the unit. optimizer.sh dispatches on its first argument and takes the
    # heap in MB second. Placeholders: {unit}, {threads}, {heap}
    # (memory-per-thread-mb x threads), {group}, {chain} and each key of vars.
    # With Amoro >= 0.9 you may add "-st", "900000" (the drain-timeout in
    # ms) so the optimizer's own shutdown budget matches; 0.8 rejects -st,
    # and its optimizer stops at once on SIGTERM (AMS reassigns its tasks
    # once its heartbeat expires). var.optimizer picks Amoro's optimizer or
    # the emulated one (./ebb, as the README builds it), which takes the
    # same options.
    command = {
      amoro    = ["/opt/amoro/bin/optimizer.sh", "start-foreground", "{heap}", "-a", "{ams}", "-p", "{threads}", "-g", "{group}", "-id", "{unit}"]
      emulated = ["./ebb", "emulate", "optimizer", "-a", "{ams}", "-p", "{threads}", "-g", "{group}", "-id", "{unit}"]
    }[var.optimizer]
    vars                 = { ams = var.optimizer == "emulated" ? var.ams_url : "thrift://127.0.0.1:1261" }
    env                  = { OPTIMIZER_LOG_DIR_NAME = "optimizer-{group}-{unit}" }
    memory-per-thread-mb = 2048
    # pid files: a restarted ebb finds its units
    state-dir     = var.optimizer == "emulated" ? "ebb-units" : "/var/lib/ebb/process"
    drain-timeout = "15m"
  }
}

# Amoro's Spark optimizer: one SparkApplication (Kubeflow spark-operator)
# per optimizer unit. -var realizer=spark picks it.
realizer "spark" {
  plugin  = "realizer-spark"
  timeout = "30s"

  config {
    namespace      = "amoro-${var.cluster}"
    mode           = "unit"
    image          = "apache/amoro-spark-optimizer:0.8.1"
    ams-thrift-uri = "thrift://amoro-ams.amoro.svc:1261"
    # Threads per executor: a unit of T threads may use ceil(T / this)
    # executors through Spark's dynamic allocation, as Amoro sizes them.
    executor-cores  = 1
    executor-memory = "2g"
    spark-conf      = { "spark.sql.shuffle.partitions" = "16" }
    drain-timeout   = "15m"
    # The spark-operator kills and resubmits a running application when
    # its spec changes: config overrides that would do that are refused
    # (and the decision log says which) unless this is true.
    allow-restart = false
  }
}

# ---------------------------------------------------------------------------
# A chain: collectors observe, evaluators decide in order (a later one sees
# the earlier decision and may adjust or veto it), one realizer acts on the
# target. Two chains may not realize the same target with the same realizer.

chain "amoro-optimizers" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]

  # The realizer is chosen without editing the chain:
  #   -var realizer=process   picks realizer.process on a dev box.
  # A conditional works too:
  #   realizer = var.cluster == "prod" ? realizer.k8s : realizer.process
  realizer = realizer[var.realizer]

  # What to scale: the Amoro optimizer group (Amoro's "default"; ebb emulate ams serves it).
  target = "default"

  # 2s: a scale-up can come no sooner than the next evaluation, and every
  # waiting task pays for it (BENCHMARKS.md, control quality). One round
  # is a few REST calls to AMS and microseconds of evaluation.
  interval = "2s" # how often to evaluate (default "30s")
  # Each chain ticks on a fixed phase within this spread, so chains do not
  # fire in lockstep: a share of the interval ("10%") or a duration ("3s");
  # default the whole interval.
  jitter  = "10%"
  timeout = "10s" # deadline for one evaluation (default: the interval)
  # A snapshot older than this counts as stale: only scale-up or no-op.
  # Default: twice the interval.
  max_snapshot_age = "1m"
  enabled          = true

  # The policy holds the keys of all the chain's evaluators; each evaluator
  # receives only its own. Names follow Amoro's dynamic allocation settings
  # (`ebb import amoro --url URL --group G` prints them for an AMS group).
  #
  # Amoro's defaults (min-parallelism 4, idle 5m, backlog 1m, sustained 30s,
  # a ramp of 1, 2, 4... units, one drain per round, whole units) behave as
  # in Amoro. This example is ebb's lean policy instead: no floor, a first
  # step at once when running tasks cannot absorb the backlog, the whole
  # backlog at once, units sized to it with two spare threads while work
  # runs, idle units gone after two minutes.
  # BENCHMARKS.md (control quality) measures it on eight traces against
  # Spark's, HPA's and Amoro's allocation and the oracle; the step
  # attributes are explained in plugins/evaluator-dra/README.md.
  policy {
    min-parallelism      = var.min_optimizers # floor, in threads
    max-parallelism      = var.max_optimizers # ceiling, in threads (required)
    executor-parallelism = 4                  # threads per optimizer unit

    executor-idle-timeout     = "2m"        # remove a unit idle this long
    scheduler-backlog-timeout = "10s"       # backlog this old triggers a scale-up
    cold-backlog-timeout      = "0s"        # ... at once when running tasks could not absorb it
    sustained-backlog-timeout = "2s"        # then again each time it persists this long
    backlog-step              = "shortfall" # add what the backlog needs at once ("ramp": 1, 2, 4...)
    scale-up-cooldown         = "2s"
    scale-down-cooldown       = "30s"
    scale-down-step           = "idle" # drain every idle unit not needed ("one": one per round)
    unit-size                 = "fit"  # the last unit only as big as the backlog ("whole": all executor-parallelism)
    headroom                  = 2      # spare threads while there is work, for what arrives during a boot
    drain-timeout             = "15m"  # force removal after draining this long
    boot-timeout              = "3m"   # a requested unit must register within this

    # Restart units whose optimizer never registered (or stopped heartbeating).
    auto-restart {
      enabled      = true
      max-retries  = 5
      grace-period = "5m"
    }
  }
}
