state {
  backend        = "kubernetes"
  namespace      = "ebb"
  kubeconfig     = "~/.kube/config"
  context        = "prod"
  name           = "ebb-a"
  shards         = 16
  lease_duration = "15s"
  renew_deadline = "10s"
  retry_period   = "2s"
  keep_decisions = 100
}
