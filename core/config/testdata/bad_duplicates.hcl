collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}

collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams2"
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

state {
  path = "a.db"
}

state {
  path = "b.db"
}

chain "first" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "group-a"
  policy {
    max-parallelism = 8
  }
}

chain "second" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "group-a"
  policy {
    max-parallelism = 8
  }
}

chain "first" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "group-b"
  policy {
    max-parallelism = 8
  }
}
