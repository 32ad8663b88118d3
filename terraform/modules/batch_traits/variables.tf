variable "name_prefix" {
  description = "Prefix of every resource name (the root's name_prefix); also the deployment dimension of the metrics."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "settings" {
  description = "The batch write-back: schedule, chunking, concurrency and the Segment budget, users file, exclusion, retention."
  type = object({
    schedule_expression     = optional(string, null)
    schedule_timezone       = optional(string, "UTC")
    chunk_bytes             = optional(number, 4194304)
    max_concurrency         = optional(number, 5)
    segment_events_per_s    = optional(number, 500)
    num_results             = optional(number, 25)
    users_key               = optional(string, "input/users.json")
    profile_exclusion       = optional(bool, false)
    batch_size              = optional(number, 1)
    max_receive_count       = optional(number, 5)
    files_expiration_days   = optional(number, 14)
    reports_expiration_days = optional(number, 90)
  })
  default = {}

  validation {
    condition     = var.settings.schedule_expression == null || can(regex("^(rate|cron|at)\\(.+\\)$", var.settings.schedule_expression))
    error_message = "settings.schedule_expression must be rate(...), cron(...) or at(...) (EventBridge Scheduler), or null for no schedule."
  }
  validation {
    condition     = var.settings.chunk_bytes >= 1048576 && var.settings.chunk_bytes <= 67108864 && floor(var.settings.chunk_bytes) == var.settings.chunk_bytes
    error_message = "settings.chunk_bytes must be a whole number from 1 MiB (1048576) to 64 MiB."
  }
  validation {
    condition     = var.settings.max_concurrency >= 2 && var.settings.max_concurrency <= 1000 && floor(var.settings.max_concurrency) == var.settings.max_concurrency
    error_message = "settings.max_concurrency must be a whole number 2..1000 (the SQS event source mapping's range)."
  }
  validation {
    condition     = var.settings.segment_events_per_s > 0 && var.settings.segment_events_per_s <= 1000
    error_message = "settings.segment_events_per_s must be above 0 and at most 1000 (Engage inbound: 1,000 events/s per space)."
  }
  validation {
    condition     = var.settings.segment_events_per_s / var.settings.max_concurrency >= 0.1
    error_message = "settings.segment_events_per_s / max_concurrency must be at least 0.1 events/s per container."
  }
  validation {
    condition     = var.settings.num_results >= 1 && var.settings.num_results <= 500 && floor(var.settings.num_results) == var.settings.num_results
    error_message = "settings.num_results must be a whole number 1..500."
  }
  validation {
    condition     = can(regex("^input/[A-Za-z0-9_./-]{1,900}$", var.settings.users_key)) && !strcontains(var.settings.users_key, "..")
    error_message = "settings.users_key must be a key under input/ (letters, digits, _ . / -)."
  }
  validation {
    condition     = var.settings.batch_size >= 1 && var.settings.batch_size <= 10 && floor(var.settings.batch_size) == var.settings.batch_size
    error_message = "settings.batch_size must be a whole number 1..10 (one chunk per invocation is the default)."
  }
  validation {
    condition     = var.settings.max_receive_count >= 1 && var.settings.max_receive_count <= 1000 && floor(var.settings.max_receive_count) == var.settings.max_receive_count
    error_message = "settings.max_receive_count must be a whole number 1..1000."
  }
  validation {
    condition     = var.settings.files_expiration_days >= 1 && var.settings.reports_expiration_days >= var.settings.files_expiration_days
    error_message = "settings.files_expiration_days must be at least 1 and reports_expiration_days at least as long."
  }
}

variable "zip_path" {
  description = "Path of functions/batch_traits' zip (built by `make package`)."
  type        = string
}

variable "layer_arns" {
  description = "Versioned ARNs of the layers to attach (the dependencies layer)."
  type        = list(string)
  default     = []
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
  default     = "python3.13"
}

variable "architecture" {
  description = "Instruction set of the function: arm64 or x86_64."
  type        = string
  default     = "arm64"
}

variable "memory_size" {
  description = "Memory in MB. A chunk is streamed (one 1 MiB block at a time), so memory does not grow with chunk_bytes or the file."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Function timeout in seconds; a chunk that needs longer hands the rest of its range to a continuation message."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 60 && var.timeout <= 900
    error_message = "timeout must be between 60 and 900 seconds."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing mode: Active or PassThrough."
  type        = string
  default     = "Active"
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 30
}

variable "extra_environment" {
  description = "Extra environment variables of the function (e.g. LOG_LEVEL); never secrets."
  type        = map(string)
  default     = {}
}

variable "iam_role_path" {
  description = "Path of the IAM roles."
  type        = string
  default     = "/"
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary for the IAM roles, or null."
  type        = string
  default     = null
}

variable "personalize_campaign_arn" {
  description = "The campaign whose solution version the batch inference job uses (a recommender cannot run batch inference)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:personalize:[a-z0-9-]+:\\d{12}:campaign/.+$", var.personalize_campaign_arn))
    error_message = "personalize_campaign_arn must be a campaign ARN for batch traits (batch inference needs a solution version, not a recommender)."
  }
}

variable "personalize_filter_arn" {
  description = "Filter applied by the batch inference job (e.g. excluding purchased items), or null."
  type        = string
  default     = null
}

variable "write_key_parameter_name" {
  description = "SSM SecureString holding the Segment source write key."
  type        = string
}

variable "write_key_parameter_arn" {
  description = "ARN of that parameter (for the function's policy)."
  type        = string
}

variable "profile_token_parameter_name" {
  description = "SSM SecureString holding the Profile API token, or null."
  type        = string
  default     = null
}

variable "profile_token_parameter_arn" {
  description = "ARN of that parameter, or null."
  type        = string
  default     = null
}

variable "segment_space_id" {
  description = "Segment space id (Profile API exclusion), or null."
  type        = string
  default     = null
}

variable "segment_api_url" {
  description = "Segment Tracking API base URL."
  type        = string
}

variable "segment_profile_api_url" {
  description = "Segment Profile API base URL."
  type        = string
}

variable "profile_api_rps" {
  description = "Each container's share of the Profile API budget (requests/s), or null."
  type        = number
  default     = null
}

variable "recommended_trait" {
  description = "Trait that receives the recommended item ids."
  type        = string
  default     = "recommended_products"
}

variable "purchased_trait" {
  description = "Trait listing purchased item ids (Profile API exclusion)."
  type        = string
  default     = "purchased_products"
}

variable "kms_key_arn" {
  description = "Customer key of the SSM SecureStrings, or null (the AWS managed key)."
  type        = string
  default     = null
}

variable "alarm_topic_arn" {
  description = "SNS topic notified by the alarms, or null."
  type        = string
  default     = null
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the function's EMF metrics."
  type        = string
  default     = "SegmentPersonalize"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects (off: reports are kept)."
  type        = bool
  default     = false
}
