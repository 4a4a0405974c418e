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

chain "unknown-keys" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "a"
  policy {
    max-parallelism = 8
    max-paralelism  = 9
    auto-restart {
      retries = 3
    }
  }
}

chain "types" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "b"
  policy {
    max-parallelism   = "eight"
    scale-up-cooldown = 30
    drain-timeout     = "15"
    auto-restart {
      enabled = "sometimes"
    }
    auto-restart {
    }
  }
}

chain "missing" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "c"
  policy {
    min-parallelism = 1
  }
}

chain "nopolicy" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "d"
}
