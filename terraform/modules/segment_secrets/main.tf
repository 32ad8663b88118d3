# SecureString parameters for Segment's credentials. The functions get the parameter
# NAMES in their environment and read the values at run time.
#
# Values are written through the write-only argument value_wo: Terraform sends them to
# SSM but keeps them in neither the plan nor the state. When no value is given, the
# parameter is created with a placeholder (which the functions treat as a missing secret)
# and the real value is set out of band (`scripts/bundle set-secrets`).
#
# Terraform writes a value only when it creates the parameter: the write-only version is a
# constant. A changing version makes Terraform write value_wo again, and Terraform cannot
# tell whether a value was given (it is ephemeral): a version bump in an apply without the
# value would put the placeholder over the real key. To rotate through Terraform instead,
# replace the parameter with the value given:
#   TF_VAR_segment_write_key=... terraform apply -replace='module.segment_secrets.aws_ssm_parameter.write_key'
#
# For the same reason a changed kms_key_arn is ignored here (key_id): an in-place update
# sends PutParameter without the write-only value, so SSM would get an empty one. The
# parameters keep the key they were written with; move them to a new key with the same
# replacement (terraform/README.md, "Secrets"). scripts/bundle set-secrets keeps a
# parameter's current key.

locals {
  placeholder   = "set-out-of-band"
  value_version = 1
}

resource "aws_ssm_parameter" "write_key" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS-managed aws/ssm key unless kms_key_arn is given (then that customer key is used).
  name             = "/${var.deployment.name_prefix}/segment/write-key"
  description      = "Segment source write key for identify calls (set by Terraform write-only, or out of band)."
  type             = "SecureString"
  key_id           = var.deployment.kms_key_arn
  value_wo         = var.write_key == null ? local.placeholder : var.write_key
  value_wo_version = local.value_version
  tags             = var.deployment.tags

  lifecycle {
    ignore_changes = [key_id]
  }
}

resource "aws_ssm_parameter" "profile_token" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS-managed aws/ssm key unless kms_key_arn is given (then that customer key is used).
  count = var.create_profile_token ? 1 : 0

  name             = "/${var.deployment.name_prefix}/segment/profile-token"
  description      = "Segment Profile API access token (set by Terraform write-only, or out of band)."
  type             = "SecureString"
  key_id           = var.deployment.kms_key_arn
  value_wo         = var.profile_token == null ? local.placeholder : var.profile_token
  value_wo_version = local.value_version
  tags             = var.deployment.tags

  lifecycle {
    ignore_changes = [key_id]
  }
}
