resource "juju_application" "hockeypuck" {
  name       = var.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "hockeypuck"
    channel  = var.channel
    revision = var.revision
    base     = var.base
  }

  config      = var.config
  constraints = var.constraints
  units       = var.units
  resources   = var.resources
}
