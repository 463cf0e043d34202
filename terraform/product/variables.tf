variable "model_uuid" {
  description = "UUID of the Juju machine model that holds the whole product."
  type        = string
}

variable "hostname" {
  description = "Public host name of the keyserver (for example keyserver.example.com): HAProxy routes it to Hockeypuck, and Hockeypuck shows it on its stats page."
  type        = string
}

variable "hockeypuck" {
  description = "The hockeypuck application: see the variables of the charm module (../charm)."
  type = object({
    app_name    = optional(string, "hockeypuck")
    channel     = optional(string, "latest/edge")
    revision    = optional(number)
    base        = optional(string, "ubuntu@24.04")
    config      = optional(map(string), {})
    constraints = optional(string)
    units       = optional(number, 1)
    resources   = optional(map(number), {})
  })
  default = {}
}

variable "postgresql" {
  description = "The postgresql application Hockeypuck stores its keys in."
  type = object({
    app_name    = optional(string, "postgresql")
    channel     = optional(string, "16/stable")
    revision    = optional(number)
    base        = optional(string, "ubuntu@24.04")
    config      = optional(map(string), {})
    constraints = optional(string)
    units       = optional(number, 1)
  })
  default = {}
}

variable "haproxy" {
  description = "The haproxy application that terminates TLS and balances HKP across the hockeypuck units."
  type = object({
    app_name    = optional(string, "haproxy")
    channel     = optional(string, "2.8/stable")
    revision    = optional(number)
    base        = optional(string, "ubuntu@24.04")
    config      = optional(map(string), {})
    constraints = optional(string)
    units       = optional(number, 1)
  })
  default = {}
}

variable "self_signed_certificates" {
  description = "A self-signed-certificates application for HAProxy's TLS certificate. Disable it to integrate HAProxy's certificates endpoint with a real certificate provider yourself."
  type = object({
    enabled  = optional(bool, true)
    app_name = optional(string, "self-signed-certificates")
    channel  = optional(string, "1/stable")
    revision = optional(number)
    base     = optional(string, "ubuntu@24.04")
    config   = optional(map(string), {})
  })
  default = {}
}

variable "opentelemetry_collector" {
  description = "An opentelemetry-collector subordinate on every hockeypuck unit, for COS (see docs/how-to/observe-with-cos.md). Its COS side (remote write, logs, dashboards) is left to wire."
  type = object({
    enabled  = optional(bool, false)
    app_name = optional(string, "opentelemetry-collector")
    channel  = optional(string)
    revision = optional(number)
    base     = optional(string, "ubuntu@24.04")
    config   = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = !var.opentelemetry_collector.enabled || var.opentelemetry_collector.channel != null
    error_message = "Set opentelemetry_collector.channel to the collector channel that matches your COS release (see Charmhub)."
  }
}

variable "offer_recon_peers" {
  description = "Offer the hockeypuck application's recon-peers endpoint, so that other Hockeypuck deployments (in other models or controllers) can peer with this one; the URL is the recon_peers_offer_url output."
  type        = bool
  default     = false
}

variable "recon_partner_offers" {
  description = "Offer URLs of the recon-peers endpoints of other Hockeypuck deployments (for example another product module's recon_peers_offer_url) to reconcile keys with: one recon-partners integration each."
  type        = list(string)
  default     = []
}
