collector "typo" {
  plugin = "collector-ams"
  config {
    url    = "http://ams"
    colour = "red"
  }
}

collector "types" {
  plugin = "collector-ams"
  config {
    url       = "http://ams"
    page-size = "many"
    groups    = "a"
    insecure  = "maybe"
  }
}

collector "missing" {
  plugin = "collector-ams"
  config {
    api-key = "k"
  }
}

collector "noconfig" {
  plugin = "collector-ams"
}

collector "durations" {
  plugin  = "collector-ams"
  timeout = "-1s"
  config {
    url             = "http://ams"
    request-timeout = "5 secondz"
  }
}

collector "negative" {
  plugin  = "collector-ams"
  timeout = "0s"
  config {
    url             = "http://ams"
    request-timeout = "-5s"
  }
}
