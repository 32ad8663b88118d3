variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. The stream is <name_prefix>-segment-events; a customer key encrypts it (null: alias/aws/kinesis)."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "external_ids" {
  description = "Values Segment must send as sts:ExternalId: the destination's Secret ID (normally the workspace id), optionally source ids. The root's segment_external_ids (validated there)."
  type        = list(string)
}

variable "stream" {
  description = "The root's kinesis input with its defaults applied: stream_mode, shard_count (PROVISIONED only), retention_hours. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    stream_mode     = string
    shard_count     = number
    retention_hours = number
  })
}

variable "segment_principal_arn" {
  description = "Segment's role that assumes ours (Segment docs, since Aug 2023)."
  type        = string
  default     = "arn:aws:iam::595280932656:role/customer-kinesis-access"
}
