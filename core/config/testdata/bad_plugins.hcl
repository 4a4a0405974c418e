collector "unknown" {
  plugin = "collector-nope"
}

evaluator "pinned" {
  plugin = "evaluator-dra"
  sha256 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
}

evaluator "badpin" {
  plugin = "evaluator-dra"
  sha256 = "abc"
}

realizer "broken" {
  plugin = "realizer-broken"
}

collector "wrongkind" {
  plugin = "realizer-k8s"
}

realizer "noplugin" {
  config {
  }
}
