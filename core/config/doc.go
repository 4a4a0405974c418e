// Package config loads the runner's HCL configuration: plugin blocks, chains
// and variables. Each plugin block's `config { }` and each chain's
// `policy { }` are decoded against the schemas the plugins publish, so a typo
// is reported as FILE:LINE:COL before anything runs. Then each plugin checks
// what its schema cannot express (ValidateConfig for every kind, and
// ValidatePolicy for evaluators), reported at the attribute it names.
//
// The configuration language, as Load reads it:
//
//	plugin_dir = "./plugins"            # external plugin binaries; relative to the file
//	state { path = "ebb.db"             # default "ebb.db" next to the file
//	        keep_decisions = 1000       # decision-log records per chain, 1..1000000
//	        keep_for = "168h" }         # and none older than this; default 7 days
//	http  { address = "127.0.0.1:9464"  # the default
//	        token = "..."  allowed_hosts = ["ebb.svc"] }  # both optional
//	log   { level = "info"  json = false }
//
//	variable "NAME" { default = EXPR  description = "..." }  # var.NAME; -var NAME=VALUE
//
//	collector "NAME" {                  # likewise evaluator "NAME", realizer "NAME"
//	  plugin  = "collector-ams"         # required
//	  sha256  = "<64 hex digits>"       # optional pin of the plugin binary
//	  timeout = "10s"                   # optional per-call deadline
//	  config { ... }                    # decoded against the plugin's ConfigSchema
//	}
//
//	chain "NAME" {
//	  collectors       = [collector.a, collector.b]   # one or more
//	  evaluators       = [evaluator.dra]              # one or more, in order
//	  realizer         = realizer.k8s                 # exactly one; also realizer[var.x]
//	                                                  # or var.prod ? realizer.k8s : realizer.process
//	  target           = "group-a"                    # required
//	  interval         = "30s"                        # default 30s, > 0
//	  jitter           = "10%"                        # share of interval or a duration; default 0
//	  timeout          = "20s"                        # default: the interval
//	  max_snapshot_age = "1m"                         # default: 2 x interval
//	  enabled          = true
//	  policy { ... }   # decoded against the union of the evaluators' PolicySchemas
//	}
//
// A policy key that two evaluators of one chain read is an error where it is
// written; a block named after an evaluator holds that evaluator's keys
// alone (policy { dra { max-parallelism = 32 } guard { max-parallelism = 16 } }).
//
// Functions: env(NAME[, DEFAULT]), file(PATH), lower, upper, trimspace,
// join, split, concat, coalesce. A null attribute value means "not set".
// One writer per platform object: no two chains, enabled or not, may
// realize targets that their realizers say are the same object
// (sdk.TargetIdentifier), or, for a realizer that cannot say, the same
// target through the same plugin and config.
package config
