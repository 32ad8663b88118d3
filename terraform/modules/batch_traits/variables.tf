variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. The function is <name_prefix>-batch-traits; name_prefix is also the deployment dimension of its metrics."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "lambda" {
  description = "Settings every function shares (runtime, architecture, layer_arns, tracing_mode, log_retention_days), built and validated by the root; passed on to lambda_function."
  type = object({
    runtime            = string
    architecture       = string
    layer_arns         = list(string)
    tracing_mode       = string
    log_retention_days = number
  })
}

variable "zip_path" {
  description = "Path of functions/batch_traits' deployment zip (build/batch_traits/function.zip)."
  type        = string
}

variable "settings" {
  description = "The root's batch_traits input with its defaults applied (num_results resolved from the root's num_results when null): schedule, chunking, concurrency (and its reservation: null is max_concurrency + 1) and the Segment events budget, users file, Profile API exclusion, retention, function size. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    schedule_expression     = string
    schedule_timezone       = string
    chunk_bytes             = number
    max_concurrency         = number
    reserved_concurrency    = number
    segment_events_per_s    = number
    num_results             = number
    users_key               = string
    profile_exclusion       = bool
    batch_size              = number
    max_receive_count       = number
    files_expiration_days   = number
    reports_expiration_days = number
    memory_size             = number
    timeout                 = number
    extra_environment       = map(string)
    force_destroy           = bool
  })
}

variable "personalize" {
  description = "The Personalize resources of the batch inference job: campaign_arn (a campaign: batch inference needs its solution version; the root refuses a recommender) and the optional filter_arn the job applies."
  type = object({
    campaign_arn = string
    filter_arn   = string
  })
}

variable "segment" {
  description = "Segment settings of the function: the root's segment input with the URLs resolved, space_id, this container's profile_api_rps share, the trait names, and the SSM parameters (name and arn) holding the write key and, with a space id, the Profile API token (null otherwise)."
  type = object({
    space_id          = string
    api_url           = string
    profile_api_url   = string
    profile_api_rps   = number
    recommended_trait = string
    purchased_trait   = string
    write_key_parameter = object({
      name = string
      arn  = string
    })
    profile_token_parameter = object({
      name = string
      arn  = string
    })
  })
}

variable "alarm_topic_arn" {
  description = "SNS topic notified by the module's alarms, or null (the alarms then notify nobody)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the function's EMF metrics (the function's default)."
  type        = string
  default     = "SegmentPersonalize"
}
