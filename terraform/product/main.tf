module "hockeypuck" {
  source = "../charm"

  model_uuid  = var.model_uuid
  app_name    = var.hockeypuck.app_name
  channel     = var.hockeypuck.channel
  revision    = var.hockeypuck.revision
  base        = var.hockeypuck.base
  config      = merge(var.hockeypuck.config, { hostname = var.hostname })
  constraints = var.hockeypuck.constraints
  units       = var.hockeypuck.units
  resources   = var.hockeypuck.resources
}

resource "juju_application" "postgresql" {
  name       = var.postgresql.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "postgresql"
    channel  = var.postgresql.channel
    revision = var.postgresql.revision
    base     = var.postgresql.base
  }

  config      = var.postgresql.config
  constraints = var.postgresql.constraints
  units       = var.postgresql.units
}

resource "juju_application" "haproxy" {
  name       = var.haproxy.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "haproxy"
    channel  = var.haproxy.channel
    revision = var.haproxy.revision
    base     = var.haproxy.base
  }

  config      = var.haproxy.config
  constraints = var.haproxy.constraints
  units       = var.haproxy.units
}

resource "juju_application" "self_signed_certificates" {
  count      = var.self_signed_certificates.enabled ? 1 : 0
  name       = var.self_signed_certificates.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "self-signed-certificates"
    channel  = var.self_signed_certificates.channel
    revision = var.self_signed_certificates.revision
    base     = var.self_signed_certificates.base
  }

  config = var.self_signed_certificates.config
  units  = 1
}

resource "juju_application" "opentelemetry_collector" {
  count      = var.opentelemetry_collector.enabled ? 1 : 0
  name       = var.opentelemetry_collector.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "opentelemetry-collector"
    channel  = var.opentelemetry_collector.channel
    revision = var.opentelemetry_collector.revision
    base     = var.opentelemetry_collector.base
  }

  # A subordinate: no units of its own; it runs on every hockeypuck machine through cos-agent.
  config = var.opentelemetry_collector.config
}

resource "juju_integration" "hockeypuck_database" {
  model_uuid = var.model_uuid

  application {
    name     = module.hockeypuck.app_name
    endpoint = module.hockeypuck.requires.database
  }

  application {
    name     = juju_application.postgresql.name
    endpoint = "database"
  }
}

resource "juju_integration" "hockeypuck_haproxy_route" {
  model_uuid = var.model_uuid

  application {
    name     = module.hockeypuck.app_name
    endpoint = module.hockeypuck.requires.haproxy_route
  }

  application {
    name     = juju_application.haproxy.name
    endpoint = "haproxy-route"
  }
}

resource "juju_integration" "haproxy_certificates" {
  count      = var.self_signed_certificates.enabled ? 1 : 0
  model_uuid = var.model_uuid

  application {
    name     = juju_application.haproxy.name
    endpoint = "certificates"
  }

  application {
    name     = juju_application.self_signed_certificates[0].name
    endpoint = "certificates"
  }
}

resource "juju_integration" "hockeypuck_cos_agent" {
  count      = var.opentelemetry_collector.enabled ? 1 : 0
  model_uuid = var.model_uuid

  application {
    name     = module.hockeypuck.app_name
    endpoint = module.hockeypuck.provides.cos_agent
  }

  application {
    name     = juju_application.opentelemetry_collector[0].name
    endpoint = "cos-agent"
  }
}

# Recon peering with other Hockeypuck deployments (docs/how-to/peer-two-deployments.md): offer
# this deployment's recon-peers endpoint, and integrate recon-partners with other deployments'
# offers. Two product modules peer when one offers and the other takes its offer URL.
resource "juju_offer" "recon_peers" {
  count            = var.offer_recon_peers ? 1 : 0
  model_uuid       = var.model_uuid
  application_name = module.hockeypuck.app_name
  endpoints        = [module.hockeypuck.provides.recon_peers]
}

resource "juju_integration" "hockeypuck_recon_partners" {
  for_each   = toset(var.recon_partner_offers)
  model_uuid = var.model_uuid

  application {
    name     = module.hockeypuck.app_name
    endpoint = module.hockeypuck.requires.recon_partners
  }

  application {
    offer_url = each.value
  }
}
