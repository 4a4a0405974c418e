plugin_dir = "plugins"

state {
  path = "state/ebb.db"
}

http {
  address = "0.0.0.0:9000"
}

log {
  level = "DEBUG"
  json  = true
}

variable "cluster" {
  default = "prod"
}

variable "max" {
  description = "ceiling"
  default     = 32
}

variable "which" {
  default = "process"
}

collector "ams" {
  plugin  = "collector-ams"
  timeout = "10s"
  config {
    url         = env("EBB_TEST_AMS_URL", "http://ams:19090")
    api-key     = env("EBB_TEST_API_KEY")
    page-size   = 5000000
    groups      = ["a", "b"]
    headers     = { X-Team = "data" }
    metrics-url = "${env("EBB_TEST_AMS_URL", "http://ams:19090")}/metrics"
  }
}

collector "prom" {
  plugin = "collector-prom"
  config {
    address = "http://prom:9090"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
  sha256 = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
}

evaluator "guard" {
  plugin = "evaluator-guard"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace  = "amoro-${var.cluster}"
    kubeconfig = "/secret/kubeconfig"
  }
}

realizer "process" {
  plugin = "realizer-process"
  config {
    command = ["optimizer.sh", "start"]
  }
}

chain "amoro" {
  collectors       = [collector.ams, collector.prom]
  evaluators       = [evaluator.dra, evaluator.guard]
  realizer         = var.cluster == "prod" ? realizer.k8s : realizer.process
  target           = "group-a"
  interval         = "20s"
  jitter           = "10%"
  timeout          = "15s"
  max_snapshot_age = "1m"

  policy {
    min-parallelism       = 4
    max-parallelism       = var.max
    executor-parallelism  = 0.5
    executor-idle-timeout = "10m"
    auto-restart {
      max-retries = 3
    }
    # guard reads max-parallelism too: its own value goes in its namespace.
    guard {
      max-parallelism = var.max
      max-step        = 2
    }
  }
}

chain "local" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer[var.which]
  target     = "group-a"
  jitter     = "3s"
  enabled    = false
  policy {
    max-parallelism = 2
  }
}
