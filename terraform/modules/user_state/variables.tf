variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. The table is <name_prefix>-user-state; a customer key (kms_key_arn) encrypts it, null leaves DynamoDB's AWS owned key."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the table: a destroy (or a replacement) fails until it is turned off and applied. The root's user_state.deletion_protection."
  type        = bool
  default     = true
  nullable    = false
}
