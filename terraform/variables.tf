# ---- Deployment --------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region to deploy to; null uses the provider's usual settings (AWS_REGION, profile). The Segment destination's region setting must match."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name, so two deployments can share an account."
  type        = string
  default     = "segment-personalize"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

# ---- Amazon Personalize (created outside Terraform: the AWS provider has no resources for it)

variable "personalize_campaign_arn" {
  description = "ARN of the Personalize campaign, or of a domain recommender (:recommender/), used for GetRecommendations."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:(campaign|recommender)/[A-Za-z0-9_.-]+$", var.personalize_campaign_arn))
    error_message = "personalize_campaign_arn must be a Personalize campaign or recommender ARN."
  }
}

variable "personalize_filter_arn" {
  description = "Optional ARN of a Personalize filter applied to every GetRecommendations call."
  type        = string
  default     = null

  validation {
    condition     = var.personalize_filter_arn == null || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:filter/[A-Za-z0-9_.-]+$", var.personalize_filter_arn))
    error_message = "personalize_filter_arn must be null or a Personalize filter ARN."
  }
}

variable "personalize_related_items_arn" {
  description = "ARN of a related-items campaign (SIMS) or recommender (\"More like X\", \"Frequently bought together\") for GET /related-items (and /recommendations?itemId=). Null (default): that route is not deployed."
  type        = string
  default     = null

  validation {
    condition     = var.personalize_related_items_arn == null || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:(campaign|recommender)/[A-Za-z0-9_.-]+$", var.personalize_related_items_arn))
    error_message = "personalize_related_items_arn must be null or a Personalize campaign or recommender ARN."
  }
}

variable "personalize_ranking_campaign_arn" {
  description = "ARN of a personalized-ranking campaign for POST /rankings (GetPersonalizedRanking). Null (default): that route is not deployed."
  type        = string
  default     = null

  validation {
    condition     = var.personalize_ranking_campaign_arn == null || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:campaign/[A-Za-z0-9_.-]+$", var.personalize_ranking_campaign_arn))
    error_message = "personalize_ranking_campaign_arn must be null or a Personalize campaign ARN."
  }
}

variable "personalize_filters" {
  description = "Named filters callers choose with filter=<name>: { name = filter ARN }. Each replaces personalize_filter_arn for its request."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for name, arn in var.personalize_filters :
      can(regex("^[A-Za-z0-9_-]{1,64}$", name)) && can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:filter/[A-Za-z0-9_.-]+$", arn))
    ])
    error_message = "personalize_filters maps names (1-64 of A-Z a-z 0-9 _ -) to Personalize filter ARNs."
  }
}

variable "personalize_filter_parameters" {
  description = "The $PARAM placeholders of each named filter's expression: { name = [\"GENRES\"] }. Callers must give each as filterValues.<PARAM>=a,b and no other."
  type        = map(list(string))
  default     = {}

  validation {
    condition = alltrue([
      for name, params in var.personalize_filter_parameters :
      contains(keys(var.personalize_filters), name) && length(params) <= 25 && alltrue([for p in params : can(regex("^[A-Za-z0-9_]{1,50}$", p))])
    ])
    error_message = "personalize_filter_parameters keys must be names in personalize_filters, each with at most 25 parameter names of 1-50 letters, digits or _."
  }
}

variable "personalize_promotions" {
  description = "The promotion sent with every GetRecommendations call (Personalize takes at most one): name, percent_promoted_items (1-100), filter (a personalize_filters name) and its filter_values ({ PARAM = [values] })."
  type = list(object({
    name                   = string
    percent_promoted_items = number
    filter                 = string
    filter_values          = optional(map(list(string)), {})
  }))
  default = []

  validation {
    condition = length(var.personalize_promotions) <= 1 && alltrue([
      for p in var.personalize_promotions :
      can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$", p.name)) && p.percent_promoted_items >= 1 && p.percent_promoted_items <= 100 && floor(p.percent_promoted_items) == p.percent_promoted_items && contains(keys(var.personalize_filters), p.filter)
    ])
    error_message = "personalize_promotions holds at most one promotion: name 1-63 of A-Z a-z 0-9 _ - starting alphanumeric, a whole percent_promoted_items 1-100, filter a name in personalize_filters."
  }
}

variable "item_metadata_columns" {
  description = "Items dataset columns returned with includeMetadata=true (at most 10). Needs metadata enabled on the campaign or recommender (extra Personalize cost). Empty (default): includeMetadata answers not_configured."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.item_metadata_columns) <= 10 && alltrue([for c in var.item_metadata_columns : can(regex("^[A-Za-z_][A-Za-z0-9_]{0,149}$", c))])
    error_message = "item_metadata_columns must be at most 10 column names."
  }
}

variable "api_cache_max_age_seconds" {
  description = "Cache-Control max-age of GET answers (private); 0 (default) sends no-store. ETag and 304 work either way."
  type        = number
  default     = 0

  validation {
    condition     = var.api_cache_max_age_seconds >= 0 && var.api_cache_max_age_seconds <= 3600 && floor(var.api_cache_max_age_seconds) == var.api_cache_max_age_seconds
    error_message = "api_cache_max_age_seconds must be a whole number from 0 to 3600."
  }
}

variable "personalize_tracking_id" {
  description = "Optional event tracker id; when set, tracked Segment events are sent to Personalize with PutEvents."
  type        = string
  default     = null

  validation {
    condition     = var.personalize_tracking_id == null || can(regex("^[A-Za-z0-9-]{1,256}$", var.personalize_tracking_id))
    error_message = "personalize_tracking_id must be null or an event tracker id (letters, digits, '-')."
  }
}

variable "num_results" {
  description = "Default number of recommended items, for the API and the trait (1-500)."
  type        = number
  default     = 25

  validation {
    condition     = var.num_results >= 1 && var.num_results <= 500 && floor(var.num_results) == var.num_results
    error_message = "num_results must be a whole number between 1 and 500."
  }
}

# ---- Segment ----------------------------------------------------------------------------

variable "segment_external_ids" {
  description = "sts:ExternalId values Segment's Kinesis destination may present: the destination's Secret ID (normally the workspace id); add source ids if needed."
  type        = list(string)

  validation {
    condition     = length(var.segment_external_ids) > 0 && alltrue([for id in var.segment_external_ids : length(trimspace(id)) >= 2])
    error_message = "Give at least one external id: the Secret ID shown in Segment's Amazon Kinesis destination settings."
  }
}

variable "segment_space_id" {
  description = "Optional Segment Unify space id; with a Profile API token it enables purchased-item exclusion (and creates the token parameter)."
  type        = string
  default     = null
}

variable "segment_profile_api_rps" {
  description = "The space's Segment Profile API budget for this deployment in requests/s, shared by both functions: each container gets budget / (maximum containers of both functions); see the segment_profile_api_budget output. Segment allows 100 per space; the default keeps 10% for network jitter and the space's other clients."
  type        = number
  default     = 90

  validation {
    condition     = var.segment_profile_api_rps > 0 && var.segment_profile_api_rps <= 10000
    error_message = "segment_profile_api_rps must be > 0 and <= 10000 requests per second."
  }
}

variable "segment_region" {
  description = "Region of the Segment workspace: us or eu. Picks the default tracking and Profile API URLs."
  type        = string
  default     = "us"

  validation {
    condition     = contains(["us", "eu"], var.segment_region)
    error_message = "segment_region must be us or eu."
  }
}

variable "segment_api_url" {
  description = "Override of the Segment tracking API base URL (default from segment_region)."
  type        = string
  default     = null

  validation {
    condition     = var.segment_api_url == null || can(regex("^https://[^/]+(/.*)?$", var.segment_api_url))
    error_message = "segment_api_url must be an https URL."
  }
}

variable "segment_profile_api_url" {
  description = "Override of the Segment Profile API base URL (default from segment_region)."
  type        = string
  default     = null

  validation {
    condition     = var.segment_profile_api_url == null || can(regex("^https://[^/]+(/.*)?$", var.segment_profile_api_url))
    error_message = "segment_profile_api_url must be an https URL."
  }
}

variable "segment_write_key" {
  description = "Write key of the Segment source that receives the identify calls. Ephemeral and write-only: never in the plan or the state; written only when the parameter is created. Null: set it out of band (scripts/bundle set-secrets)."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "segment_profile_token" {
  description = "Segment Profile API access token (with segment_space_id). Ephemeral and write-only like segment_write_key, written only on creation."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "tracked_events" {
  description = "Track event names sent to Personalize and answered with a trait update."
  type        = list(string)
  default     = ["Product Viewed", "Product Clicked", "Product Added", "Order Completed"]
}

variable "purchase_events" {
  description = "Track event names that mean a purchase; their items are excluded from recommendations."
  type        = list(string)
  default     = ["Order Completed"]
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
  description = "Profile trait read for purchased item ids."
  type        = string
  default     = "purchased_products"
}

# ---- Kinesis stream -----------------------------------------------------------------------

variable "kinesis_stream_mode" {
  description = "ON_DEMAND (scales itself) or PROVISIONED (kinesis_shard_count shards)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "kinesis_shard_count" {
  description = "Shards when kinesis_stream_mode is PROVISIONED."
  type        = number
  default     = 1

  validation {
    condition     = var.kinesis_shard_count >= 1 && floor(var.kinesis_shard_count) == var.kinesis_shard_count
    error_message = "kinesis_shard_count must be a whole number >= 1."
  }
}

variable "kinesis_retention_hours" {
  description = "Stream retention (24-8760 hours): the window for replaying failed batches. 168 (7 days) by default, so batches given up on over a week-end can still be replayed; above 24 h Kinesis bills extended retention."
  type        = number
  default     = 168

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours must be between 24 and 8760."
  }
}

variable "kms_key_arn" {
  description = "Optional customer managed KMS key for the stream, the SSM parameters, the log groups and the alarm topic (roles get kms:ViaService-scoped grants). Its key policy must let logs.<region>.amazonaws.com and cloudwatch.amazonaws.com (alarms publishing to SNS) use it. Null: AWS-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:...:key/...)."
  }
}

# ---- Traits sync (event source mapping) ----------------------------------------------------

variable "traits_batch_size" {
  description = "Maximum Kinesis records per update_traits invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.traits_batch_size >= 1 && var.traits_batch_size <= 10000
    error_message = "traits_batch_size must be between 1 and 10000."
  }
}

variable "traits_batching_window_seconds" {
  description = "Seconds to gather records before invoking (0-300)."
  type        = number
  default     = 5

  validation {
    condition     = var.traits_batching_window_seconds >= 0 && var.traits_batching_window_seconds <= 300
    error_message = "traits_batching_window_seconds must be between 0 and 300."
  }
}

variable "traits_parallelization_factor" {
  description = "Concurrent batches per shard (1-10)."
  type        = number
  default     = 1

  validation {
    condition     = var.traits_parallelization_factor >= 1 && var.traits_parallelization_factor <= 10
    error_message = "traits_parallelization_factor must be between 1 and 10."
  }
}

variable "traits_maximum_retry_attempts" {
  description = "Retries of a failing batch before its range goes to the on-failure queue (0-10000)."
  type        = number
  default     = 10

  validation {
    condition     = var.traits_maximum_retry_attempts >= 0 && var.traits_maximum_retry_attempts <= 10000
    error_message = "traits_maximum_retry_attempts must be between 0 and 10000."
  }
}

variable "traits_maximum_record_age_seconds" {
  description = "Records older than this go to the on-failure queue instead of being retried (60-604800). Must be below the stream retention: what is left of it is the window to replay them (scripts/bundle replay-failed)."
  type        = number
  default     = 21600

  validation {
    condition     = var.traits_maximum_record_age_seconds >= 60 && var.traits_maximum_record_age_seconds <= 604800
    error_message = "traits_maximum_record_age_seconds must be between 60 and 604800."
  }

  validation {
    condition     = var.traits_maximum_record_age_seconds < var.kinesis_retention_hours * 3600
    error_message = "traits_maximum_record_age_seconds must be below kinesis_retention_hours x 3600: a record given up on must still be in the stream to be replayed."
  }
}

variable "traits_starting_position" {
  description = "Where the mapping starts reading a new stream: LATEST or TRIM_HORIZON."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.traits_starting_position)
    error_message = "traits_starting_position must be LATEST or TRIM_HORIZON."
  }
}

variable "traits_filter_relevant_events" {
  description = "Drop irrelevant Segment events with a Lambda event filter before invocation. Trade-off: non-JSON records are then dropped by Lambda and never reach the dead-letter queue."
  type        = bool
  default     = false
}

# ---- Recommendations API ----------------------------------------------------------------

variable "api_key_required" {
  description = "Require an API key on GET /recommendations (with a usage plan). False leaves the API open."
  type        = bool
  default     = true
}

variable "cors_allow_origins" {
  description = "Browser origins allowed to call the API: [\"*\"] or exact origins like https://shop.example.com. Empty (default) leaves CORS off. When set, the function sends CORS headers and OPTIONS /recommendations (no key: browsers send none on a preflight) reaches it."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for origin in var.cors_allow_origins :
      origin == "*" ? length(var.cors_allow_origins) == 1 : can(regex("^https?://[^\\s/,]+$", origin))
    ])
    error_message = "cors_allow_origins must be [\"*\"] alone, or origins like https://shop.example.com (scheme and host, optional port; no path, trailing slash or comma)."
  }
}

variable "api_stage_name" {
  description = "Stage name, the last segment of api_url."
  type        = string
  default     = "v1"
}

variable "api_throttling_rate_limit" {
  description = "Requests per second allowed on the stage and per API key."
  type        = number
  default     = 50

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be > 0."
  }
}

variable "api_throttling_burst_limit" {
  description = "Burst above the rate allowed on the stage and per API key."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_burst_limit >= 0
    error_message = "api_throttling_burst_limit must be >= 0."
  }
}

variable "api_quota_limit" {
  description = "Requests allowed per API key and api_quota_period; null (default) sets no quota, throttling still applies. A quota below rate x period cuts callers off with 429 until the period rolls over (1,000,000/month lasts ~5.6 h at 50 req/s)."
  type        = number
  default     = null

  validation {
    condition     = var.api_quota_limit == null || try(var.api_quota_limit >= 1, false)
    error_message = "api_quota_limit must be null or >= 1."
  }
}

variable "api_quota_period" {
  description = "Quota period: DAY, WEEK or MONTH."
  type        = string
  default     = "MONTH"

  validation {
    condition     = contains(["DAY", "WEEK", "MONTH"], var.api_quota_period)
    error_message = "api_quota_period must be DAY, WEEK or MONTH."
  }
}

variable "api_access_log_retention_days" {
  description = "Retention of the API access logs, in days. They hold client IP addresses: by default as short as the function logs (30)."
  type        = number
  default     = 30
}

variable "manage_api_gateway_account" {
  description = "Set the region's API Gateway CloudWatch role (one setting per account and region, shared by every REST API; stage logging needs it). Off by default: set it once per region (terraform/README.md) or turn this on in exactly one stack. Destroy leaves it in place."
  type        = bool
  default     = false
}

variable "api_waf_web_acl_arn" {
  description = "Optional regional WAFv2 web ACL to associate with the API stage."
  type        = string
  default     = null
}

variable "iam_role_path" {
  description = "Path of every IAM role this configuration creates."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{0,510}/)?$", var.iam_role_path))
    error_message = "iam_role_path must start and end with '/'."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a managed policy set as permissions boundary on every IAM role this configuration creates, or null."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.iam_permissions_boundary))
    error_message = "iam_permissions_boundary must be null or an IAM policy ARN."
  }
}

# ---- Functions ------------------------------------------------------------------------------

variable "lambda_runtime" {
  description = "Runtime of both functions; the layer is built for it (make package LAMBDA_PYTHON_VERSION=...)."
  type        = string
  default     = "python3.13"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "lambda_architecture" {
  description = "Architecture of both functions: arm64 or x86_64; the layer must be built for it (make package LAMBDA_ARCH=...)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "recommendations_memory_size" {
  description = "Memory of the recommendations function, in MB."
  type        = number
  default     = 256
}

variable "recommendations_timeout" {
  description = "Timeout of the recommendations function, in seconds (below API Gateway's 29 s)."
  type        = number
  default     = 10
}

variable "recommendations_reserved_concurrency" {
  description = "Reserved concurrency of the recommendations function; -1 for none (accounts with a low concurrency quota)."
  type        = number
  default     = 50
}

variable "recommendations_purchase_exclusion" {
  description = "Whether the API removes the user's purchased items read from the Profile API (with segment_space_id). Off, the API reads no profiles (use a purchase filter, personalize_filter_arn) and update_traits gets the whole Profile API budget."
  type        = bool
  default     = true
}

variable "recommendations_profile_workers" {
  description = "Threads per recommendations container reading the Profile API in the background (PROFILE_WORKERS)."
  type        = number
  default     = 4

  validation {
    condition     = var.recommendations_profile_workers >= 1 && var.recommendations_profile_workers <= 32 && floor(var.recommendations_profile_workers) == var.recommendations_profile_workers
    error_message = "recommendations_profile_workers must be a whole number from 1 to 32."
  }
}

variable "recommendations_extra_environment" {
  description = "Optional tuning settings of the recommendations function as environment variables (e.g. LOG_LEVEL). Never secrets."
  type        = map(string)
  default     = {}
}

variable "traits_memory_size" {
  description = "Memory of the update_traits function, in MB."
  type        = number
  default     = 256
}

variable "traits_timeout" {
  description = "Timeout of the update_traits function, in seconds."
  type        = number
  default     = 60
}

variable "traits_reserved_concurrency" {
  description = "Reserved concurrency of update_traits; at least shards x parallelization factor. -1 for none."
  type        = number
  default     = 20
}

variable "traits_worker_threads" {
  description = "Threads per update_traits container working on a batch's users (WORKER_THREADS); as many again read the Profile API."
  type        = number
  default     = 8

  validation {
    condition     = var.traits_worker_threads >= 1 && var.traits_worker_threads <= 64 && floor(var.traits_worker_threads) == var.traits_worker_threads
    error_message = "traits_worker_threads must be a whole number from 1 to 64."
  }
}

variable "traits_extra_environment" {
  description = "Optional tuning settings of the update_traits function as environment variables (e.g. LOG_LEVEL). Never secrets."
  type        = map(string)
  default     = {}
}

variable "tracing_enabled" {
  description = "X-Ray tracing for both functions and the API stage."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the function log groups, in days (they may hold user ids)."
  type        = number
  default     = 30
}

variable "recommendations_zip_path" {
  description = "Zip of the recommendations function; null means ../build/recommendations/function.zip relative to this folder (make package)."
  type        = string
  default     = null
}

variable "update_traits_zip_path" {
  description = "Zip of the update_traits function; null means ../build/update_traits/function.zip relative to this folder."
  type        = string
  default     = null
}

variable "layer_zip_path" {
  description = "Zip of the dependency layer; null means ../build/layer.zip relative to this folder."
  type        = string
  default     = null
}

# ---- Alarms -----------------------------------------------------------------------------

variable "alarm_sns_topic_arn" {
  description = "Existing SNS topic notified by the alarms; null for none."
  type        = string
  default     = null
}

variable "create_alarm_sns_topic" {
  description = "Create the SNS topic <name_prefix>-alarms for the alarms (when alarm_sns_topic_arn is null). Off leaves the alarms notifying nobody."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the created alarm topic (confirm the mail AWS sends)."
  type        = string
  default     = null
}

variable "api_4xx_alarm_percent" {
  description = "Alarm when more than this percentage of API requests answer 4XX (403 missing key, 400, 429 throttled) in 5 minutes (at least 20 requests)."
  type        = number
  default     = 10
}

variable "api_p99_latency_alarm_ms" {
  description = "Alarm when the API's p99 latency stays above this many milliseconds for 10 minutes."
  type        = number
  default     = 3000
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when update_traits is this many seconds behind the stream."
  type        = number
  default     = 300
}
