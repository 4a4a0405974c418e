variable "max" {
  default = 8
}

variable "token" {
  description = "no default"
}

variable "namespace" {
  default = "amoro"
}

collector "ams" {
  plugin = "collector-ams"
  config {
    url     = var.endpoint
    api-key = var.token
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace = var.namespace
  }
}

chain "c" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "a"
  policy {
    max-parallelism = var.max
  }
}

variable "alias" {
  default = var.max
}
