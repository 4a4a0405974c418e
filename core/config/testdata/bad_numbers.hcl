collector "ams" {
  plugin = "collector-ams"
  config {
    url       = "http://ams/${1e-9999999}"
    page-size = 1e999999999
  }
}
