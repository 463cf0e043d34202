output "hockeypuck_app_name" {
  description = "Name of the hockeypuck application."
  value       = module.hockeypuck.app_name
}

output "postgresql_app_name" {
  description = "Name of the postgresql application."
  value       = juju_application.postgresql.name
}

output "haproxy_app_name" {
  description = "Name of the haproxy application: its units are where clients connect (ports 80 and 443)."
  value       = juju_application.haproxy.name
}

output "self_signed_certificates_app_name" {
  description = "Name of the self-signed-certificates application, or null when disabled."
  value       = one(juju_application.self_signed_certificates[*].name)
}

output "opentelemetry_collector_app_name" {
  description = "Name of the opentelemetry-collector application, or null when disabled; integrate it with COS."
  value       = one(juju_application.opentelemetry_collector[*].name)
}

output "recon_peers_offer_url" {
  description = "URL of the offer of hockeypuck's recon-peers endpoint, for other deployments' recon_partner_offers; null unless offer_recon_peers is set."
  value       = one(juju_offer.recon_peers[*].url)
}
