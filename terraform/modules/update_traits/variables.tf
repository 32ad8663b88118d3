variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. The function is <name_prefix>-update-traits."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "lambda" {
  description = "Settings both functions share (runtime, architecture, layer_arns, tracing_mode, log_retention_days), built and validated by the root; passed on to lambda_function."
  type = object({
    runtime            = string
    architecture       = string
    layer_arns         = list(string)
    tracing_mode       = string
    log_retention_days = number
  })
}

variable "zip_path" {
  description = "Path of functions/update_traits' deployment zip (build/update_traits/function.zip)."
  type        = string
}

variable "settings" {
  description = "The root's update_traits input with its defaults applied: function size, worker threads, the event source mapping, the queues, refresh coalescing and seeding. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    memory_size                  = number
    timeout                      = number
    reserved_concurrency         = number
    worker_threads               = number
    extra_environment            = map(string)
    batch_size                   = number
    batching_window_seconds      = number
    parallelization_factor       = number
    maximum_retry_attempts       = number
    maximum_record_age_seconds   = number
    starting_position            = string
    filter_relevant_events       = bool
    queue_retention_seconds      = number
    min_refresh_interval_seconds = number
    wait_for_seed                = bool
    reseed_interval_seconds      = number
    refresh_max_concurrency      = number
  })
}

variable "personalize" {
  description = "The Personalize resources both functions use: campaign_arn (or recommender ARN), optional filter_arn and tracking_id (PutEvents when set), num_results. From the root's flat personalize_* and num_results inputs."
  type = object({
    campaign_arn = string
    filter_arn   = string
    tracking_id  = string
    num_results  = number
  })
}

variable "segment" {
  description = "Segment settings of the function: the root's segment input with the URLs resolved, space_id, this container's profile_api_rps share, and the SSM parameters (name and arn) holding the write key and, with a space id, the Profile API token (null otherwise)."
  type = object({
    space_id          = string
    api_url           = string
    profile_api_url   = string
    profile_api_rps   = number
    tracked_events    = list(string)
    purchase_events   = list(string)
    item_id_property  = string
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

variable "stream_arn" {
  description = "ARN of the Kinesis stream Segment writes to."
  type        = string
}

variable "log_hash_key_parameter" {
  description = "The SSM SecureString keying the user-id pseudonyms in the function's logs (name and arn; LOG_HASH_KEY_PARAMETER, ssm:GetParameter on that ARN). Null: no user id is logged."
  type = object({
    name = string
    arn  = string
  })
  default = null
}

variable "user_state" {
  description = "The user-state store (modules/user_state): its table's name and ARN (the only resource the function's dynamodb: statement names) and ttl_days, how long an item outlives the user's last write (USER_STATE_TTL_DAYS)."
  type = object({
    table_name = string
    table_arn  = string
    ttl_days   = number
  })
}
