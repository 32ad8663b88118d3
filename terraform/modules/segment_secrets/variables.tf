variable "name_prefix" {
  description = "Prefix of the parameter path: /<name_prefix>/segment/..."
  type        = string
}

variable "write_key" {
  description = "Segment source write key used to send identify calls. Ephemeral and write-only: never stored in the plan or the state. Written only when the parameter is created; null creates it with a placeholder, to be set out of band (scripts/bundle set-secrets)."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "create_profile_token" {
  description = "Whether to create the Profile API token parameter (needed for purchased-item exclusion)."
  type        = bool
  default     = false
}

variable "profile_token" {
  description = "Segment Profile API access token. Ephemeral and write-only like write_key, written only on creation; null means set it out of band."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the SecureStrings; null uses the AWS-managed key alias/aws/ssm."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
