variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. Parameters are /<name_prefix>/segment/...; a customer key encrypts them (null: alias/aws/ssm)."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
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
