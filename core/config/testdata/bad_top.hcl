plugin_directory = "./plugins"

http {
  address = "localhost"
  port    = 9464
}

log {
  level = "loud"
}

metrics {
}
