variable "name_prefix" {
  description = "Prefix of every resource name; the API and function are <name_prefix>-recommendations."
  type        = string
}

variable "zip_path" {
  description = "Path of functions/recommendations' deployment zip (build/recommendations/function.zip)."
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
  description = "Function timeout in seconds; must stay below API Gateway's 29 s integration timeout."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 28
    error_message = "timeout must be between 1 and 28 seconds (API Gateway gives up at 29 s)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (-1: none); caps the cost of abuse."
  type        = number
  default     = -1
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the function (Active or PassThrough); Active also traces the API stage."
  type        = string
  default     = "Active"
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Retention of the API access log group, in days. Access logs hold client IPs (no query strings or bodies): keep it as short as the function logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.access_log_retention_days)
    error_message = "access_log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
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

variable "personalize_related_items_arn" {
  description = "Related-items campaign or recommender ARN (PERSONALIZE_RELATED_ITEMS_ARN); null leaves GET /related-items out of the API."
  type        = string
  default     = null
}

variable "personalize_ranking_campaign_arn" {
  description = "Personalized-ranking campaign ARN (PERSONALIZE_RANKING_CAMPAIGN_ARN); null leaves POST /rankings out of the API."
  type        = string
  default     = null
}

variable "personalize_filters" {
  description = "Named filters (PERSONALIZE_FILTERS): { name = filter ARN }."
  type        = map(string)
  default     = {}
}

variable "personalize_filter_parameters" {
  description = "The $PARAM names of each named filter: { name = [\"PARAM\"] }."
  type        = map(list(string))
  default     = {}
}

variable "personalize_promotions" {
  description = "At most one promotion (PERSONALIZE_PROMOTIONS): name, percent_promoted_items, filter (a personalize_filters name), filter_values."
  type = list(object({
    name                   = string
    percent_promoted_items = number
    filter                 = string
    filter_values          = optional(map(list(string)), {})
  }))
  default = []
}

variable "item_metadata_columns" {
  description = "Items dataset columns for includeMetadata=true (ITEM_METADATA_COLUMNS), at most 10."
  type        = list(string)
  default     = []
}

variable "cache_max_age_seconds" {
  description = "Cache-Control max-age of GET answers (CACHE_MAX_AGE_S); 0 sends no-store."
  type        = number
  default     = 0
}

variable "num_results" {
  description = "Default number of items when the caller gives no numResults (1-500)."
  type        = number
  default     = 25

  validation {
    condition     = var.num_results >= 1 && var.num_results <= 500 && floor(var.num_results) == var.num_results
    error_message = "num_results must be a whole number between 1 and 500."
  }
}

variable "profile_token_parameter_name" {
  description = "Name of the SSM SecureString holding the Profile API token, or null (no purchased-item exclusion)."
  type        = string
  default     = null
}

variable "profile_token_parameter_arn" {
  description = "ARN of the profile token parameter, or null."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the parameters and log groups, or null for AWS-managed keys (no grant needed)."
  type        = string
  default     = null
}

variable "segment_space_id" {
  description = "Segment Unify space id; with the profile token it enables purchased-item exclusion."
  type        = string
  default     = null
}

variable "segment_profile_api_url" {
  description = "Segment Profile API base URL."
  type        = string
  default     = "https://profiles.segment.com/v1"
}

variable "purchase_events" {
  description = "Track event names that mean a purchase."
  type        = list(string)
  default     = ["Order Completed"]
}

variable "purchased_trait" {
  description = "Profile trait listing purchased item ids."
  type        = string
  default     = "purchased_products"
}

variable "stage_name" {
  description = "Name of the API stage (the last part of api_url)."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name must be letters, digits, '-' or '_'."
  }
}

variable "api_key_required" {
  description = "Require an API key (x-api-key) on GET /recommendations. Turning it off leaves the API open to anyone with the URL."
  type        = bool
  default     = true
}

variable "cors_allow_origins" {
  description = "Browser origins allowed to call the API (CORS): [\"*\"], or exact origins like https://shop.example.com. Empty (default): no CORS headers and no OPTIONS route. Non-empty sets CORS_ALLOW_ORIGIN and adds a keyless OPTIONS /recommendations that the function answers."
  type        = list(string)
  default     = []

  validation {
    # The function's own rule (CORS_ALLOW_ORIGIN): "*" alone, or scheme://host[:port] only.
    condition = alltrue([
      for origin in var.cors_allow_origins :
      origin == "*" ? length(var.cors_allow_origins) == 1 : can(regex("^https?://[^\\s/,]+$", origin))
    ])
    error_message = "cors_allow_origins must be [\"*\"] alone, or origins like https://shop.example.com (scheme and host, optional port; no path, trailing slash or comma)."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second, for the stage and for the usage plan."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be > 0."
  }
}

variable "throttling_burst_limit" {
  description = "Burst of requests allowed above the rate, for the stage and for the usage plan."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_burst_limit >= 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a whole number >= 0."
  }
}

variable "quota_limit" {
  description = "Requests allowed per key in each quota_period; null (default) sets no quota (throttling still applies). A quota below rate x period seconds cuts callers off with 429 before the period ends."
  type        = number
  default     = null

  validation {
    condition     = var.quota_limit == null || (try(var.quota_limit >= 1, false) && try(floor(var.quota_limit) == var.quota_limit, false))
    error_message = "quota_limit must be null or a whole number >= 1."
  }
}

variable "quota_period" {
  description = "Quota period: DAY, WEEK or MONTH."
  type        = string
  default     = "MONTH"

  validation {
    condition     = contains(["DAY", "WEEK", "MONTH"], var.quota_period)
    error_message = "quota_period must be DAY, WEEK or MONTH."
  }
}

variable "manage_api_gateway_account" {
  description = "Set the region's API Gateway account CloudWatch role (needed for stage logging). One setting per account and region, shared by every REST API: leave off (default) unless this is the one stack that owns it. Destroy leaves it in place."
  type        = bool
  default     = false
}

variable "waf_web_acl_arn" {
  description = "Optional ARN of a regional WAFv2 web ACL to associate with the stage (recommended for a public production API)."
  type        = string
  default     = null
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

variable "profile_workers" {
  description = "Threads reading the Profile API in the background (PROFILE_WORKERS), 1-32."
  type        = number
  default     = 4

  validation {
    condition     = var.profile_workers >= 1 && var.profile_workers <= 32 && floor(var.profile_workers) == var.profile_workers
    error_message = "profile_workers must be a whole number from 1 to 32."
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
