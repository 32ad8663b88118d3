variable "name_prefix" {
  description = "Prefix of every resource name; the function is <name_prefix>-update-traits."
  type        = string
}

variable "zip_path" {
  description = "Path of functions/update_traits' deployment zip (build/update_traits/function.zip)."
  type        = string
}

variable "layer_arns" {
  description = "Versioned ARNs of the layers to attach (the dependency layer)."
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
  description = "Memory in MB."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Function timeout in seconds; a batch makes Personalize and Segment calls per distinct user."
  type        = number
  default     = 60
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (-1: none). Needs at least shards x parallelization_factor."
  type        = number
  default     = -1
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

variable "stream_arn" {
  description = "ARN of the Kinesis stream Segment writes to."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the stream, parameters and log group, or null for AWS-managed keys (no grant needed)."
  type        = string
  default     = null
}

variable "personalize_campaign_arn" {
  description = "Campaign ARN, or recommender ARN (:recommender/), for GetRecommendations."
  type        = string
}

variable "personalize_filter_arn" {
  description = "Optional filter ARN for GetRecommendations."
  type        = string
  default     = null
}

variable "personalize_tracking_id" {
  description = "Optional event tracker id; when set, relevant events are sent with PutEvents."
  type        = string
  default     = null
}

variable "num_results" {
  description = "Number of recommended items written to the trait (1-500)."
  type        = number
  default     = 25

  validation {
    condition     = var.num_results >= 1 && var.num_results <= 500 && floor(var.num_results) == var.num_results
    error_message = "num_results must be a whole number between 1 and 500."
  }
}

variable "write_key_parameter_name" {
  description = "Name of the SSM SecureString holding the Segment write key."
  type        = string
}

variable "write_key_parameter_arn" {
  description = "ARN of the write key parameter."
  type        = string
}

variable "profile_token_parameter_name" {
  description = "Name of the SSM SecureString holding the Profile API token, or null."
  type        = string
  default     = null
}

variable "profile_token_parameter_arn" {
  description = "ARN of the profile token parameter, or null."
  type        = string
  default     = null
}

variable "segment_space_id" {
  description = "Segment Unify space id; with the profile token it enables purchased-item exclusion."
  type        = string
  default     = null
}

variable "segment_api_url" {
  description = "Segment tracking API base URL (identify calls go to <url>/batch)."
  type        = string
  default     = "https://api.segment.io/v1"
}

variable "segment_profile_api_url" {
  description = "Segment Profile API base URL."
  type        = string
  default     = "https://profiles.segment.com/v1"
}

variable "tracked_events" {
  description = "Track event names that are relevant (sent to Personalize, trigger a trait update)."
  type        = list(string)
  default     = ["Product Viewed", "Product Clicked", "Product Added", "Order Completed"]

  validation {
    condition     = length(var.tracked_events) > 0 && alltrue([for e in var.tracked_events : length(trimspace(e)) > 0 && !strcontains(e, ",")])
    error_message = "tracked_events must be non-empty names without commas."
  }
}

variable "purchase_events" {
  description = "Track event names that mean a purchase (their items are excluded from recommendations)."
  type        = list(string)
  default     = ["Order Completed"]

  validation {
    condition     = alltrue([for e in var.purchase_events : length(trimspace(e)) > 0 && !strcontains(e, ",")])
    error_message = "purchase_events must be names without commas."
  }
}

variable "item_id_property" {
  description = "Product property holding the Personalize item id: sku or product_id."
  type        = string
  default     = "sku"

  validation {
    condition     = contains(["sku", "product_id"], var.item_id_property)
    error_message = "item_id_property must be sku or product_id."
  }
}

variable "recommended_trait" {
  description = "Trait written with the recommended item ids."
  type        = string
  default     = "recommended_products"
}

variable "purchased_trait" {
  description = "Profile trait listing purchased item ids (read from the Profile API)."
  type        = string
  default     = "purchased_products"
}

variable "batch_size" {
  description = "Maximum records per invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "Seconds to gather records before invoking (0-300); larger windows mean fewer, fuller batches and more per-user deduplication."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard (1-10); order is kept per partition key (Segment uses the user id)."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10
    error_message = "parallelization_factor must be between 1 and 10."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before it goes to the on-failure queue (0-10000; never infinite, so a poison pill cannot block a shard)."
  type        = number
  default     = 10

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be between 0 and 10000 (-1, infinite, is not allowed)."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this are not retried but sent to the on-failure queue (60-604800). Keep it below the stream retention so they can be replayed."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800
    error_message = "maximum_record_age_in_seconds must be between 60 and 604800 (-1, infinite, is not allowed)."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts reading: LATEST or TRIM_HORIZON."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.starting_position)
    error_message = "starting_position must be LATEST or TRIM_HORIZON."
  }
}

variable "filter_relevant_events" {
  description = "Let Lambda drop records that are not tracked track events before invoking (fewer invocations). Trade-off: records whose data is not JSON are then dropped silently by Lambda instead of reaching our dead-letter queue."
  type        = bool
  default     = false
}

variable "queue_retention_seconds" {
  description = "How long the dead-letter and on-failure queues keep messages (60-1209600)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.queue_retention_seconds >= 60 && var.queue_retention_seconds <= 1209600
    error_message = "queue_retention_seconds must be between 60 and 1209600."
  }
}

variable "profile_api_rps" {
  description = "This container's share of the space's Profile API budget in requests/s (SEGMENT_PROFILE_API_RPS); null for no limit."
  type        = number
  default     = null

  validation {
    condition     = var.profile_api_rps == null || try(var.profile_api_rps > 0, false)
    error_message = "profile_api_rps must be null or > 0."
  }
}

variable "worker_threads" {
  description = "Threads working on a batch's users (WORKER_THREADS), 1-64."
  type        = number
  default     = 8

  validation {
    condition     = var.worker_threads >= 1 && var.worker_threads <= 64 && floor(var.worker_threads) == var.worker_threads
    error_message = "worker_threads must be a whole number from 1 to 64."
  }
}

variable "extra_environment" {
  description = "Further environment variables for the function's optional tuning settings (e.g. LOG_LEVEL). Never secrets. The typed settings of this module win on a name clash."
  type        = map(string)
  default     = {}
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
