output "app_name" {
  description = "Name of the deployed application."
  value       = juju_application.hockeypuck.name
}

output "requires" {
  description = "Endpoints this application requires, to use in juju_integration."
  value = {
    database       = "database"
    haproxy_route  = "haproxy-route"
    recon_partners = "recon-partners"
  }
}

output "provides" {
  description = "Endpoints this application provides, to use in juju_integration."
  value = {
    cos_agent   = "cos-agent"
    recon_peers = "recon-peers"
  }
}
