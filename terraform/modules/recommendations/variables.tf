variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. The API and function are <name_prefix>-recommendations."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "lambda" {
  description = "Settings both functions share (runtime, architecture, layer_arns, tracing_mode, log_retention_days), built and validated by the root; passed on to lambda_function. Active tracing also traces the API stage."
  type = object({
    runtime            = string
    architecture       = string
    layer_arns         = list(string)
    tracing_mode       = string
    log_retention_days = number
  })
}

variable "zip_path" {
  description = "Path of functions/recommendations' deployment zip (build/recommendations/function.zip)."
  type        = string
}

variable "settings" {
  description = "The root's recommendations input with its defaults applied: function size, Profile API workers and the Personalize capabilities. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    memory_size          = number
    timeout              = number
    reserved_concurrency = number
    purchase_exclusion   = bool
    profile_workers      = number
    extra_environment    = map(string)
    related_items_arn    = string
    ranking_campaign_arn = string
    filters              = map(string)
    filter_parameters    = map(list(string))
    promotions = list(object({
      name                   = string
      percent_promoted_items = number
      filter                 = string
      filter_values          = map(list(string))
    }))
    item_metadata_columns = list(string)
    cache_max_age_seconds = number
  })
}

variable "api" {
  description = "The root's api input with its defaults applied: stage, API key and usage plan, CORS, throttling, quota, access logs, account logging role and stage logging, WAF. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    stage_name                 = string
    key_required               = bool
    cors_allow_origins         = list(string)
    throttling_rate_limit      = number
    throttling_burst_limit     = number
    quota_limit                = number
    quota_period               = string
    access_log_retention_days  = number
    manage_api_gateway_account = bool
    stage_logging              = bool
    waf_web_acl_arn            = string
  })
}

variable "personalize" {
  description = "The Personalize resources both functions use: campaign_arn (or recommender ARN), optional filter_arn, tracking_id (unused here), num_results (the default when a caller gives no numResults). From the root's flat personalize_* and num_results inputs."
  type = object({
    campaign_arn = string
    filter_arn   = string
    tracking_id  = string
    num_results  = number
  })
}

variable "profiles" {
  description = "Purchased-item exclusion through the Segment Profile API: space_id, api_url, this container's api_rps share (null: no limit), purchased_trait and the token's SSM parameter (name and arn). Null: the function reads no profiles."
  type = object({
    space_id        = string
    api_url         = string
    api_rps         = number
    purchased_trait = string
    token_parameter = object({
      name = string
      arn  = string
    })
  })
  default = null
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
  description = "The user-state store (modules/user_state) the function reads each user's purchases from (USER_STATE_TABLE; one GetItem beside the Personalize call): table_name and table_arn, the only resource its dynamodb:GetItem names. Null: no exclusion from the store."
  type = object({
    table_name = string
    table_arn  = string
  })
  default = null
}
