variable "name_prefix" {
  description = "Prefix of every resource name; the stream is <name_prefix>-segment-events."
  type        = string
}

variable "external_ids" {
  description = "Values Segment must send as sts:ExternalId: the destination's Secret ID (normally the workspace id), optionally source ids."
  type        = list(string)

  validation {
    condition     = length(var.external_ids) > 0 && alltrue([for id in var.external_ids : length(trimspace(id)) >= 2])
    error_message = "Give at least one external id (the Secret ID shown in Segment's Amazon Kinesis destination settings)."
  }
}

variable "segment_principal_arn" {
  description = "Segment's role that assumes ours (Segment docs, since Aug 2023)."
  type        = string
  default     = "arn:aws:iam::595280932656:role/customer-kinesis-access"
}

variable "stream_mode" {
  description = "ON_DEMAND (scales itself, billed per GB) or PROVISIONED (shard_count shards, billed per shard-hour)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "shard_count" {
  description = "Number of shards when stream_mode is PROVISIONED (each takes 1 MB/s or 1,000 records/s of writes)."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number >= 1."
  }
}

variable "retention_hours" {
  description = "How long records stay in the stream (24-8760 hours); failed batches can be replayed within this window. 168 (7 days) covers a week-end outage; above 24 h Kinesis bills extended retention per shard-hour (ON_DEMAND: per GB)."
  type        = number
  default     = 168

  validation {
    condition     = var.retention_hours >= 24 && var.retention_hours <= 8760
    error_message = "retention_hours must be between 24 and 8760."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the stream; null uses the AWS-managed key alias/aws/kinesis."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "iam_role_path" {
  description = "Path of the IAM roles this module creates."
  type        = string
  default     = "/"
}

variable "iam_permissions_boundary" {
  description = "ARN of a managed policy set as permissions boundary on the IAM roles this module creates, or null."
  type        = string
  default     = null
}
