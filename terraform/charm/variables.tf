variable "model_uuid" {
  description = "UUID of the Juju machine model to deploy into (for example `juju_model.this.uuid`, or `juju show-model <name> --format json`)."
  type        = string
}

variable "app_name" {
  description = "Name of the application in the model."
  type        = string
  default     = "hockeypuck"
}

variable "channel" {
  description = "Charmhub channel of the hockeypuck charm."
  type        = string
  default     = "latest/edge"
}

variable "revision" {
  description = "Charm revision to deploy; null for the latest revision of `channel`."
  type        = number
  default     = null
}

variable "base" {
  description = "Base of the machines: the charm supports ubuntu@24.04 only."
  type        = string
  default     = "ubuntu@24.04"
}

variable "config" {
  description = "Charm config options (see docs/reference/configuration.md), as strings: for example { hostname = \"keyserver.example.com\" }."
  type        = map(string)
  default     = {}
}

variable "constraints" {
  description = "Juju constraints of the machines, for example \"arch=amd64 cores=2 mem=4G root-disk=50G\"; null for the model's defaults."
  type        = string
  default     = null
}

variable "units" {
  description = "Number of units. Every unit serves lookups and reconciles with the others; all share one database."
  type        = number
  default     = 1

  validation {
    condition     = var.units >= 1 && floor(var.units) == var.units
    error_message = "units must be a whole number of at least 1."
  }
}

variable "resources" {
  description = "Charm resources by name, as Charmhub resource revisions: for example { hockeypuck-snap = 3 }. A locally built snap cannot be given here: attach it with `juju attach-resource` (see docs/how-to/use-a-local-snap.md)."
  type        = map(number)
  default     = {}
}
