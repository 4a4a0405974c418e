collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

evaluator "clash" {
  plugin = "evaluator-clash"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace = "amoro"
  }
}

chain "refs" {
  collectors = [collector.ams, collector.amz]
  evaluators = [evaluator.dra]
  realizer   = collector.ams
  target     = "a"
  policy {
    max-parallelism = 8
  }
}

chain "strings" {
  collectors = ["ams"]
  evaluators = [evaluator.dra, evaluator.dra]
  realizer   = realizer.k8s
  target     = ""
  policy {
    max-parallelism = 8
  }
}

chain "timing" {
  collectors       = [collector.ams]
  evaluators       = [evaluator.dra]
  realizer         = realizer.k8s
  target           = "c"
  interval         = "0s"
  timeout          = "-10s"
  max_snapshot_age = "soon"
  policy {
    max-parallelism = 8
  }
}

chain "jitter" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "d"
  interval   = "10s"
  jitter     = "150%"
  policy {
    max-parallelism = 8
  }
}

chain "incomplete" {
  collectors = []
  evaluators = [evaluator.dra, evaluator.clash]
  policy {
    max-parallelism = 8
  }
}
