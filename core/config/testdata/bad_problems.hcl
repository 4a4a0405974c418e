collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace = "amoro"
  }
}

chain "c" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "a"
  policy {
    min-parallelism = 20000
    max-parallelism = 10001
    boot-timeout    = "0s"
    auto-restart {
      max-retries = 500
    }
  }
}
