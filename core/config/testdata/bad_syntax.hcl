collector "ams" {
  plugin = "collector-ams"
  config {
    url = = "http://ams"
  }
}
