# Flat inputs: what the contract names, and what every part of the deployment shares.
# Each component's settings are ONE typed object (recommendations, api, update_traits,
# kinesis, segment, alarms): every attribute is optional with its default, described in
# the variable's description ("- name: text" lines, rendered one row per attribute in
# README.md) and validated here. The modules receive these objects with the defaults
# applied and validate nothing again.

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

variable "kms_key_arn" {
  description = "Optional customer managed KMS key for the stream, the SSM parameters, the log groups and the alarm topic (roles get kms:ViaService-scoped grants). Its key policy must let logs.<region>.amazonaws.com and cloudwatch.amazonaws.com (alarms publishing to SNS) use it. Null: AWS-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:...:key/...)."
  }
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

variable "segment" {
  description = <<-EOT
    Segment settings of both functions.
    - region: Region of the Segment workspace, us or eu; picks the default tracking and Profile API URLs.
    - api_url: Override of the Segment tracking API base URL (https; default from region).
    - profile_api_url: Override of the Segment Profile API base URL (https; default from region).
    - profile_api_rps: The space's Profile API budget for this deployment in requests/s (> 0, at most 10000), split evenly over every container that can read it at once: update_traits' (stream and refresh queue: they seed the user-state store) and batch_traits' with its profile_exclusion; the API reads the store instead. See the segment_profile_api_budget output. Segment allows 100 per space; the default keeps 10% for network jitter and the space's other clients.
    - tracked_events: Track event names sent to Personalize and answered with a trait update (non-empty names without commas).
    - purchase_events: Track event names that mean a purchase; their items are excluded from the trait (names without commas).
    - item_id_property: Product property holding the Personalize item id: sku or product_id.
    - recommended_trait: Trait written with the recommended item ids (1-255 characters, no spaces, commas, . or $).
    - purchased_trait: Profile trait read for purchased item ids (the same rule).
  EOT
  type = object({
    region            = optional(string, "us")
    api_url           = optional(string)
    profile_api_url   = optional(string)
    profile_api_rps   = optional(number, 90)
    tracked_events    = optional(list(string), ["Product Viewed", "Product Clicked", "Product Added", "Order Completed"])
    purchase_events   = optional(list(string), ["Order Completed"])
    item_id_property  = optional(string, "sku")
    recommended_trait = optional(string, "recommended_products")
    purchased_trait   = optional(string, "purchased_products")
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["us", "eu"], var.segment.region)
    error_message = "segment.region must be us or eu."
  }

  validation {
    condition     = var.segment.api_url == null || can(regex("^https://[^/]+(/.*)?$", var.segment.api_url))
    error_message = "segment.api_url must be null or an https URL."
  }

  validation {
    condition     = var.segment.profile_api_url == null || can(regex("^https://[^/]+(/.*)?$", var.segment.profile_api_url))
    error_message = "segment.profile_api_url must be null or an https URL."
  }

  validation {
    condition     = var.segment.profile_api_rps > 0 && var.segment.profile_api_rps <= 10000
    error_message = "segment.profile_api_rps must be > 0 and <= 10000 requests per second."
  }

  validation {
    condition     = length(var.segment.tracked_events) > 0 && alltrue([for e in var.segment.tracked_events : length(trimspace(e)) > 0 && !strcontains(e, ",")])
    error_message = "segment.tracked_events must be non-empty names without commas."
  }

  validation {
    condition     = alltrue([for e in var.segment.purchase_events : length(trimspace(e)) > 0 && !strcontains(e, ",")])
    error_message = "segment.purchase_events must be names without commas."
  }

  validation {
    condition     = contains(["sku", "product_id"], var.segment.item_id_property)
    error_message = "segment.item_id_property must be sku or product_id."
  }

  # The functions' rule (functions/common/settings.py, TRAIT_NAME): the Profile API's include=
  # list is comma-separated, and Segment reads . as a path and $ as the array operator.
  validation {
    condition     = alltrue([for t in [var.segment.recommended_trait, var.segment.purchased_trait] : can(regex("^[^\\s,.$]{1,255}$", t))])
    error_message = "segment.recommended_trait and segment.purchased_trait must be trait names: 1-255 characters, no spaces, commas, . or $."
  }
}

# ---- Functions (both) ---------------------------------------------------------------------

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

variable "tracing_enabled" {
  description = "X-Ray tracing for both functions and the API stage."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the function log groups, in days (they may hold user ids): a value CloudWatch Logs accepts."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "artifacts" {
  description = <<-EOT
    Where `make package` put the deployment zips; null means the default path under ../build relative to this folder.
    - recommendations: Zip of the recommendations function (default ../build/recommendations/function.zip).
    - update_traits: Zip of the update_traits function (default ../build/update_traits/function.zip).
    - layer: Zip of the dependency layer (default ../build/layer.zip).
    - batch_traits: Zip of the batch_traits function, used with enable_batch_traits (default ../build/batch_traits/function.zip).
  EOT
  type = object({
    recommendations = optional(string)
    update_traits   = optional(string)
    layer           = optional(string)
    batch_traits    = optional(string)
  })
  default  = {}
  nullable = false
}

# ---- Recommendations function and API ------------------------------------------------------

variable "recommendations" {
  description = <<-EOT
    The recommendations function and the Personalize capabilities it serves.
    - memory_size: Memory of the function, in MB (128-10240).
    - timeout: Timeout of the function, in seconds (1-28: below API Gateway's 29 s).
    - reserved_concurrency: Reserved concurrency; -1 for none (accounts with a low concurrency quota).
    - purchase_exclusion: Whether the API removes the user's purchased items, read from the user-state store (one GetItem beside the Personalize call; never the Profile API). Off, the API reads neither (use a purchase filter, personalize_filter_arn).
    - profile_workers: Threads per container reading the Profile API in the background (PROFILE_WORKERS), a whole number 1-32.
    - extra_environment: Optional tuning settings as environment variables (e.g. LOG_LEVEL). Never secrets. The typed settings win on a name clash.
    - related_items_arn: ARN of a related-items campaign (SIMS) or recommender ("More like X", "Frequently bought together") for GET /related-items (and /recommendations?itemId=). Null: that route is not deployed.
    - ranking_campaign_arn: ARN of a personalized-ranking campaign for POST /rankings (GetPersonalizedRanking). Null: that route is not deployed.
    - filters: Named filters callers choose with filter=<name>: { name = filter ARN }, names of 1-64 of A-Z a-z 0-9 _ -. Each replaces personalize_filter_arn for its request.
    - filter_parameters: The $PARAM placeholders of each named filter's expression: { name = ["GENRES"] }, at most 25 per filter. Callers must give each as filterValues.<PARAM>=a,b and no other.
    - promotions: The promotion sent with every GetRecommendations call (at most one): name, percent_promoted_items (a whole 1-100), filter (a filters name) and its filter_values ({ PARAM = [values] }).
    - item_metadata_columns: Items dataset columns returned with includeMetadata=true (at most 10). Needs metadata enabled on the campaign or recommender (extra Personalize cost). Empty: includeMetadata answers not_configured.
    - cache_max_age_seconds: Cache-Control max-age of GET answers (private), a whole number 0-3600; 0 sends no-store. ETag and 304 work either way.
  EOT
  type = object({
    memory_size          = optional(number, 256)
    timeout              = optional(number, 10)
    reserved_concurrency = optional(number, 50)
    purchase_exclusion   = optional(bool, true)
    profile_workers      = optional(number, 4)
    extra_environment    = optional(map(string), {})
    related_items_arn    = optional(string)
    ranking_campaign_arn = optional(string)
    filters              = optional(map(string), {})
    filter_parameters    = optional(map(list(string)), {})
    promotions = optional(list(object({
      name                   = string
      percent_promoted_items = number
      filter                 = string
      filter_values          = optional(map(list(string)), {})
    })), [])
    item_metadata_columns = optional(list(string), [])
    cache_max_age_seconds = optional(number, 0)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.recommendations.memory_size >= 128 && var.recommendations.memory_size <= 10240
    error_message = "recommendations.memory_size must be between 128 and 10240 MB."
  }

  validation {
    condition     = var.recommendations.timeout >= 1 && var.recommendations.timeout <= 28
    error_message = "recommendations.timeout must be between 1 and 28 seconds (API Gateway gives up at 29 s)."
  }

  validation {
    condition     = var.recommendations.reserved_concurrency >= -1 && floor(var.recommendations.reserved_concurrency) == var.recommendations.reserved_concurrency
    error_message = "recommendations.reserved_concurrency must be -1 or a whole number >= 0."
  }

  validation {
    condition     = var.recommendations.profile_workers >= 1 && var.recommendations.profile_workers <= 32 && floor(var.recommendations.profile_workers) == var.recommendations.profile_workers
    error_message = "recommendations.profile_workers must be a whole number from 1 to 32."
  }

  validation {
    condition     = var.recommendations.related_items_arn == null || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:(campaign|recommender)/[A-Za-z0-9_.-]+$", var.recommendations.related_items_arn))
    error_message = "recommendations.related_items_arn must be null or a Personalize campaign or recommender ARN."
  }

  validation {
    condition     = var.recommendations.ranking_campaign_arn == null || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:campaign/[A-Za-z0-9_.-]+$", var.recommendations.ranking_campaign_arn))
    error_message = "recommendations.ranking_campaign_arn must be null or a Personalize campaign ARN."
  }

  validation {
    condition = alltrue([
      for name, arn in var.recommendations.filters :
      can(regex("^[A-Za-z0-9_-]{1,64}$", name)) && can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:filter/[A-Za-z0-9_.-]+$", arn))
    ])
    error_message = "recommendations.filters maps names (1-64 of A-Z a-z 0-9 _ -) to Personalize filter ARNs."
  }

  validation {
    condition = alltrue([
      for name, params in var.recommendations.filter_parameters :
      contains(keys(var.recommendations.filters), name) && length(params) <= 25 && alltrue([for p in params : can(regex("^[A-Za-z0-9_]{1,50}$", p))])
    ])
    error_message = "recommendations.filter_parameters keys must be names in recommendations.filters, each with at most 25 parameter names of 1-50 letters, digits or _."
  }

  validation {
    condition = length(var.recommendations.promotions) <= 1 && alltrue([
      for p in var.recommendations.promotions :
      can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$", p.name)) && p.percent_promoted_items >= 1 && p.percent_promoted_items <= 100 && floor(p.percent_promoted_items) == p.percent_promoted_items && contains(keys(var.recommendations.filters), p.filter)
    ])
    error_message = "recommendations.promotions holds at most one promotion: name 1-63 of A-Z a-z 0-9 _ - starting alphanumeric, a whole percent_promoted_items 1-100, filter a name in recommendations.filters."
  }

  validation {
    condition     = length(var.recommendations.item_metadata_columns) <= 10 && alltrue([for c in var.recommendations.item_metadata_columns : can(regex("^[A-Za-z_][A-Za-z0-9_]{0,149}$", c))])
    error_message = "recommendations.item_metadata_columns must be at most 10 column names."
  }

  validation {
    condition     = var.recommendations.cache_max_age_seconds >= 0 && var.recommendations.cache_max_age_seconds <= 3600 && floor(var.recommendations.cache_max_age_seconds) == var.recommendations.cache_max_age_seconds
    error_message = "recommendations.cache_max_age_seconds must be a whole number from 0 to 3600."
  }
}

variable "api" {
  description = <<-EOT
    The REST API in front of the recommendations function.
    - stage_name: Stage name, the last segment of api_url (1-128 letters, digits, '-' or '_').
    - key_required: Require an API key (x-api-key, with a usage plan) on every route. False leaves the API open to anyone with the URL.
    - cors_allow_origins: Browser origins allowed to call the API: ["*"] alone, or exact origins like https://shop.example.com (scheme and host, optional port). Empty leaves CORS off. When set, the function sends CORS headers and a keyless OPTIONS on each route (browsers send no key on a preflight) reaches it.
    - throttling_rate_limit: Requests per second allowed on the stage and per API key (> 0).
    - throttling_burst_limit: Burst above the rate allowed on the stage and per API key (a whole number >= 0).
    - quota_limit: Requests allowed per API key and quota_period (a whole number >= 1); null sets no quota, throttling still applies. A quota below rate x period cuts callers off with 429 until the period rolls over (1,000,000/month lasts ~5.6 h at 50 req/s).
    - quota_period: Quota period: DAY, WEEK or MONTH.
    - access_log_retention_days: Retention of the API access logs, in days (a value CloudWatch Logs accepts). They hold client IP addresses: by default as short as the function logs.
    - manage_api_gateway_account: Set the region's API Gateway CloudWatch role (one setting per account and region, shared by every REST API; stage logging needs it). Off: set it once per region (terraform/README.md), or turn this on in exactly one stack. Destroy leaves it in place.
    - stage_logging: JSON access logs and execution logs at ERROR on the stage. API Gateway refuses both until the region's CloudWatch role is set (a fresh account has none): true once it is set (by another stack or by hand, terraform/README.md); null follows manage_api_gateway_account; false turns them off.
    - waf_web_acl_arn: Optional regional WAFv2 web ACL associated with the stage (recommended for a public production API).
  EOT
  type = object({
    stage_name                 = optional(string, "v1")
    key_required               = optional(bool, true)
    cors_allow_origins         = optional(list(string), [])
    throttling_rate_limit      = optional(number, 50)
    throttling_burst_limit     = optional(number, 100)
    quota_limit                = optional(number)
    quota_period               = optional(string, "MONTH")
    access_log_retention_days  = optional(number, 30)
    manage_api_gateway_account = optional(bool, false)
    stage_logging              = optional(bool)
    waf_web_acl_arn            = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.api.stage_name))
    error_message = "api.stage_name must be 1-128 letters, digits, '-' or '_'."
  }

  validation {
    # The function's own rule (CORS_ALLOW_ORIGIN): "*" alone, or scheme://host[:port] only.
    condition = alltrue([
      for origin in var.api.cors_allow_origins :
      origin == "*" ? length(var.api.cors_allow_origins) == 1 : can(regex("^https?://[^\\s/,]+$", origin))
    ])
    error_message = "api.cors_allow_origins must be [\"*\"] alone, or origins like https://shop.example.com (scheme and host, optional port; no path, trailing slash or comma)."
  }

  validation {
    condition     = var.api.throttling_rate_limit > 0
    error_message = "api.throttling_rate_limit must be > 0."
  }

  validation {
    condition     = var.api.throttling_burst_limit >= 0 && floor(var.api.throttling_burst_limit) == var.api.throttling_burst_limit
    error_message = "api.throttling_burst_limit must be a whole number >= 0."
  }

  validation {
    condition     = var.api.quota_limit == null || try(var.api.quota_limit >= 1 && floor(var.api.quota_limit) == var.api.quota_limit, false)
    error_message = "api.quota_limit must be null or a whole number >= 1."
  }

  validation {
    condition     = contains(["DAY", "WEEK", "MONTH"], var.api.quota_period)
    error_message = "api.quota_period must be DAY, WEEK or MONTH."
  }

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.api.access_log_retention_days)
    error_message = "api.access_log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }

  validation {
    condition     = var.api.waf_web_acl_arn == null || can(regex("^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{12}:regional/webacl/.+$", var.api.waf_web_acl_arn))
    error_message = "api.waf_web_acl_arn must be null or a regional WAFv2 web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/...)."
  }
}

# ---- Kinesis stream and the traits sync ------------------------------------------------------

variable "kinesis" {
  description = <<-EOT
    The Kinesis stream Segment writes to.
    - stream_mode: ON_DEMAND (scales itself) or PROVISIONED (shard_count shards).
    - shard_count: Shards when stream_mode is PROVISIONED (a whole number >= 1).
    - retention_hours: Stream retention (24-8760 hours): the window for replaying failed batches. 168 (7 days) by default, so batches given up on over a week-end can still be replayed; above 24 h Kinesis bills extended retention.
  EOT
  type = object({
    stream_mode     = optional(string, "ON_DEMAND")
    shard_count     = optional(number, 1)
    retention_hours = optional(number, 168)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.kinesis.stream_mode)
    error_message = "kinesis.stream_mode must be ON_DEMAND or PROVISIONED."
  }

  validation {
    condition     = var.kinesis.shard_count >= 1 && floor(var.kinesis.shard_count) == var.kinesis.shard_count
    error_message = "kinesis.shard_count must be a whole number >= 1."
  }

  validation {
    condition     = var.kinesis.retention_hours >= 24 && var.kinesis.retention_hours <= 8760
    error_message = "kinesis.retention_hours must be between 24 and 8760."
  }
}

variable "update_traits" {
  description = <<-EOT
    The update_traits function and its two event source mappings: the Kinesis stream's, and the refresh queue's (trailing refreshes).
    - memory_size: Memory of the function, in MB (128-10240).
    - timeout: Timeout of the function, in seconds (1-900); a batch makes Personalize and Segment calls per distinct user.
    - reserved_concurrency: Reserved concurrency, shared by the stream's and the refresh queue's invocations: at least shards x parallelization_factor + refresh_max_concurrency. -1 for none.
    - worker_threads: Threads per container working on a batch's users (WORKER_THREADS), a whole number 1-64; as many again read the Profile API.
    - extra_environment: Optional tuning settings as environment variables (e.g. LOG_LEVEL). Never secrets. The typed settings win on a name clash.
    - batch_size: Maximum Kinesis records per invocation (1-10000).
    - batching_window_seconds: Seconds to gather records before invoking (0-300); larger windows mean fewer, fuller batches and more per-user deduplication.
    - parallelization_factor: Concurrent batches per shard (1-10); order is kept per partition key (Segment uses the user id).
    - maximum_retry_attempts: Retries of a failing batch before its range goes to the on-failure queue (0-10000; never infinite, so a poison pill cannot block a shard).
    - maximum_record_age_seconds: Records older than this go to the on-failure queue instead of being retried (60-604800). Must be below kinesis.retention_hours x 3600: what is left of the retention is the window to replay them (scripts/bundle replay-failed).
    - starting_position: Where the mapping starts reading a new stream: LATEST or TRIM_HORIZON.
    - filter_relevant_events: Drop irrelevant Segment events with a Lambda event filter before invocation. Trade-off: non-JSON records are then dropped by Lambda and never reach the dead-letter queue.
    - queue_retention_seconds: How long the dead-letter and on-failure queues keep messages (60-1209600).
    - min_refresh_interval_seconds: Refresh coalescing (MIN_REFRESH_INTERVAL_S), a whole number 0-900: a user refreshed less than this long ago gets no new GetRecommendations and identify until it has passed, then one trailing refresh (the refresh queue) covers every event since; a purchase refreshes at once. 0 refreshes every batch.
    - wait_for_seed: SEED_WAIT: a user's first refresh waits for the Profile API seed of its purchases (strict, as before the store). Off, the first refresh goes out with the purchases the store and the batch know, and the user is refreshed again when the seed adds an item that list held.
    - reseed_interval_seconds: RESEED_INTERVAL_SECONDS: re-read the Profile API trait of a user seeded longer ago than this, for purchases from sources that never reach the stream: 0 (never) or a whole number 3600-31536000 (an hour to a year).
    - refresh_max_concurrency: Containers consuming the refresh queue at once: its SQS event source mapping's maximum concurrency, a whole number 2-1000 (2 is SQS's minimum). They count in the segment.profile_api_rps split (they seed too) and share reserved_concurrency with the stream's.
  EOT
  type = object({
    memory_size                  = optional(number, 256)
    timeout                      = optional(number, 60)
    reserved_concurrency         = optional(number, 20)
    worker_threads               = optional(number, 8)
    extra_environment            = optional(map(string), {})
    batch_size                   = optional(number, 100)
    batching_window_seconds      = optional(number, 5)
    parallelization_factor       = optional(number, 1)
    maximum_retry_attempts       = optional(number, 10)
    maximum_record_age_seconds   = optional(number, 21600)
    starting_position            = optional(string, "LATEST")
    filter_relevant_events       = optional(bool, false)
    queue_retention_seconds      = optional(number, 1209600)
    min_refresh_interval_seconds = optional(number, 30)
    wait_for_seed                = optional(bool, false)
    reseed_interval_seconds      = optional(number, 0)
    refresh_max_concurrency      = optional(number, 2)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.update_traits.memory_size >= 128 && var.update_traits.memory_size <= 10240
    error_message = "update_traits.memory_size must be between 128 and 10240 MB."
  }

  validation {
    condition     = var.update_traits.timeout >= 1 && var.update_traits.timeout <= 900
    error_message = "update_traits.timeout must be between 1 and 900 seconds."
  }

  validation {
    condition     = var.update_traits.reserved_concurrency >= -1 && floor(var.update_traits.reserved_concurrency) == var.update_traits.reserved_concurrency
    error_message = "update_traits.reserved_concurrency must be -1 or a whole number >= 0."
  }

  validation {
    condition     = var.update_traits.worker_threads >= 1 && var.update_traits.worker_threads <= 64 && floor(var.update_traits.worker_threads) == var.update_traits.worker_threads
    error_message = "update_traits.worker_threads must be a whole number from 1 to 64."
  }

  validation {
    condition     = var.update_traits.batch_size >= 1 && var.update_traits.batch_size <= 10000
    error_message = "update_traits.batch_size must be between 1 and 10000."
  }

  validation {
    condition     = var.update_traits.batching_window_seconds >= 0 && var.update_traits.batching_window_seconds <= 300
    error_message = "update_traits.batching_window_seconds must be between 0 and 300."
  }

  validation {
    condition     = var.update_traits.parallelization_factor >= 1 && var.update_traits.parallelization_factor <= 10
    error_message = "update_traits.parallelization_factor must be between 1 and 10."
  }

  validation {
    condition     = var.update_traits.maximum_retry_attempts >= 0 && var.update_traits.maximum_retry_attempts <= 10000
    error_message = "update_traits.maximum_retry_attempts must be between 0 and 10000 (-1, infinite, is not allowed)."
  }

  validation {
    condition     = var.update_traits.maximum_record_age_seconds >= 60 && var.update_traits.maximum_record_age_seconds <= 604800
    error_message = "update_traits.maximum_record_age_seconds must be between 60 and 604800 (-1, infinite, is not allowed)."
  }

  validation {
    condition     = var.update_traits.maximum_record_age_seconds < var.kinesis.retention_hours * 3600
    error_message = "update_traits.maximum_record_age_seconds must be below kinesis.retention_hours x 3600: a record given up on must still be in the stream to be replayed."
  }

  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.update_traits.starting_position)
    error_message = "update_traits.starting_position must be LATEST or TRIM_HORIZON."
  }

  validation {
    condition     = var.update_traits.queue_retention_seconds >= 60 && var.update_traits.queue_retention_seconds <= 1209600
    error_message = "update_traits.queue_retention_seconds must be between 60 and 1209600."
  }

  validation {
    # An SQS message's delay is at most 15 minutes: the trailing refresh is one delayed message.
    condition     = var.update_traits.min_refresh_interval_seconds >= 0 && var.update_traits.min_refresh_interval_seconds <= 900 && floor(var.update_traits.min_refresh_interval_seconds) == var.update_traits.min_refresh_interval_seconds
    error_message = "update_traits.min_refresh_interval_seconds must be a whole number from 0 to 900 (SQS delays a message at most 15 minutes)."
  }

  validation {
    condition     = var.update_traits.reseed_interval_seconds == 0 || (var.update_traits.reseed_interval_seconds >= 3600 && var.update_traits.reseed_interval_seconds <= 31536000 && floor(var.update_traits.reseed_interval_seconds) == var.update_traits.reseed_interval_seconds)
    error_message = "update_traits.reseed_interval_seconds must be 0 (never) or a whole number from 3600 (an hour) to 31536000 (a year)."
  }

  validation {
    condition     = var.update_traits.refresh_max_concurrency >= 2 && var.update_traits.refresh_max_concurrency <= 1000 && floor(var.update_traits.refresh_max_concurrency) == var.update_traits.refresh_max_concurrency
    error_message = "update_traits.refresh_max_concurrency must be a whole number from 2 to 1000 (the SQS event source mapping's range)."
  }
}

# ---- The user-state store ---------------------------------------------------------------------

variable "user_state" {
  description = <<-EOT
    The user-state store (terraform/modules/user_state): one DynamoDB item per user with the purchases the bundle has seen, when the Profile API trait was merged in, and the last refresh. update_traits and the recommendations API read it instead of the Profile API.
    - ttl_days: An item expires this long after the user's last write (purchase, seed or refresh), a whole number of days 1-3650 (USER_STATE_TTL_DAYS). A user back after that is seeded again from the Profile API.
    - deletion_protection: DynamoDB deletion protection on the table: terraform destroy (or anything that would replace the table) fails until this is false and applied.
  EOT
  type = object({
    ttl_days            = optional(number, 400)
    deletion_protection = optional(bool, true)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.user_state.ttl_days >= 1 && var.user_state.ttl_days <= 3650 && floor(var.user_state.ttl_days) == var.user_state.ttl_days
    error_message = "user_state.ttl_days must be a whole number from 1 to 3650 (ten years)."
  }
}

# ---- Batch backfill (opt-in) ------------------------------------------------------------------

variable "enable_batch_traits" {
  description = "Deploy the batch write-back of the recommended-items trait to every profile (bucket, the role Personalize assumes for batch inference, the batch_traits function, chunk queues, alarms, optional schedule): terraform/modules/batch_traits. Needs personalize_campaign_arn to be a campaign (batch inference runs on its solution version; a recommender cannot)."
  type        = bool
  default     = false
  nullable    = false

  validation {
    condition     = !var.enable_batch_traits || can(regex("^arn:aws[a-z-]*:personalize:[a-z0-9-]+:[0-9]{12}:campaign/", var.personalize_campaign_arn))
    error_message = "enable_batch_traits needs personalize_campaign_arn to be a campaign ARN: batch inference runs on a campaign's solution version, not on a recommender."
  }
}

variable "batch_traits" {
  description = <<-EOT
    The batch write-back (with enable_batch_traits): Personalize batch inference on the users file, its output written to Segment in byte-range chunks (functions/batch_traits/README.md).
    - schedule_expression: EventBridge Scheduler expression that starts a backfill, rate(...), cron(...) or at(...); null deploys no schedule (start with scripts/bundle backfill start).
    - schedule_timezone: Time zone of a cron() or at() schedule (IANA name, e.g. Europe/Paris).
    - chunk_bytes: Bytes of output per chunk, the unit of parallel work and of retry (a whole number, 1 MiB to 256 MiB). The function streams a chunk, so memory does not grow with it.
    - max_concurrency: Chunk workers at once: the SQS event source mapping's maximum concurrency (a whole number 2-1000; 2 is SQS's minimum). The function reserves one more for a start call.
    - reserved_concurrency: Reserved concurrency of the function: null reserves max_concurrency + 1 (the chunk workers and a start call); -1 for none (accounts with a low concurrency quota); or a whole number of at least max_concurrency + 1.
    - segment_events_per_s: Identify calls per second to the Segment Tracking API, split evenly over max_concurrency (> 0, at most 1000: Engage's inbound limit per space; the default leaves half to the live traits sync). At least 0.1 per container.
    - num_results: Recommended items per user in the batch job (a whole number 1-500); null uses num_results.
    - users_key: Key of the users file (JSON lines of {"userId": ...}) the schedule and backfill start use: under input/ (letters, digits, _ . / -).
    - profile_exclusion: Also remove the user's purchased items read from the Profile API (needs segment_space_id and the token); its containers (max_concurrency) then count in the segment.profile_api_rps split. Off, only the job's filter (personalize_filter_arn) excludes purchases.
    - batch_size: Chunk messages per invocation (a whole number 1-10; 1, one chunk per invocation, by default).
    - max_receive_count: Attempts of a chunk before it goes to the dead-letter queue with its byte range (a whole number 1-1000).
    - files_expiration_days: Days the users, output and chunk-state files are kept (a whole number >= 1).
    - reports_expiration_days: Days the per-job reports are kept (a whole number, at least files_expiration_days).
    - memory_size: Memory of the function, in MB (128-10240).
    - timeout: Timeout of the function, in seconds (60-900); a chunk that needs longer hands the rest of its range to a continuation message.
    - extra_environment: Optional tuning settings as environment variables (e.g. LOG_LEVEL). Never secrets. The typed settings win on a name clash.
    - force_destroy: Let terraform destroy delete the bucket with its objects (off: destroy fails while reports are kept).
  EOT
  type = object({
    schedule_expression     = optional(string)
    schedule_timezone       = optional(string, "UTC")
    chunk_bytes             = optional(number, 4194304)
    max_concurrency         = optional(number, 5)
    reserved_concurrency    = optional(number)
    segment_events_per_s    = optional(number, 500)
    num_results             = optional(number)
    users_key               = optional(string, "input/users.json")
    profile_exclusion       = optional(bool, false)
    batch_size              = optional(number, 1)
    max_receive_count       = optional(number, 5)
    files_expiration_days   = optional(number, 14)
    reports_expiration_days = optional(number, 90)
    memory_size             = optional(number, 256)
    timeout                 = optional(number, 300)
    extra_environment       = optional(map(string), {})
    force_destroy           = optional(bool, false)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.batch_traits.schedule_expression == null || can(regex("^(rate|cron|at)\\(.+\\)$", var.batch_traits.schedule_expression))
    error_message = "batch_traits.schedule_expression must be null (no schedule) or an EventBridge Scheduler expression: rate(...), cron(...) or at(...)."
  }

  validation {
    condition     = length(trimspace(var.batch_traits.schedule_timezone)) > 0
    error_message = "batch_traits.schedule_timezone must be a time zone name such as UTC or Europe/Paris."
  }

  validation {
    condition     = var.batch_traits.chunk_bytes >= 1048576 && var.batch_traits.chunk_bytes <= 268435456 && floor(var.batch_traits.chunk_bytes) == var.batch_traits.chunk_bytes
    error_message = "batch_traits.chunk_bytes must be a whole number from 1048576 (1 MiB) to 268435456 (256 MiB)."
  }

  validation {
    condition     = var.batch_traits.max_concurrency >= 2 && var.batch_traits.max_concurrency <= 1000 && floor(var.batch_traits.max_concurrency) == var.batch_traits.max_concurrency
    error_message = "batch_traits.max_concurrency must be a whole number from 2 to 1000 (the SQS event source mapping's range)."
  }

  validation {
    # Fewer than the chunk workers and a start call would throttle the workers the mapping starts.
    condition     = var.batch_traits.reserved_concurrency == null || try(var.batch_traits.reserved_concurrency == -1 || (var.batch_traits.reserved_concurrency >= var.batch_traits.max_concurrency + 1 && floor(var.batch_traits.reserved_concurrency) == var.batch_traits.reserved_concurrency), false)
    error_message = "batch_traits.reserved_concurrency must be null (max_concurrency + 1), -1 (none) or a whole number of at least batch_traits.max_concurrency + 1."
  }

  validation {
    condition     = var.batch_traits.segment_events_per_s > 0 && var.batch_traits.segment_events_per_s <= 1000
    error_message = "batch_traits.segment_events_per_s must be > 0 and <= 1000 (Engage inbound: 1,000 events/s per space)."
  }

  validation {
    condition     = var.batch_traits.segment_events_per_s / var.batch_traits.max_concurrency >= 0.1
    error_message = "batch_traits.segment_events_per_s / batch_traits.max_concurrency must be at least 0.1 events/s per container."
  }

  validation {
    condition     = var.batch_traits.num_results == null || try(var.batch_traits.num_results >= 1 && var.batch_traits.num_results <= 500 && floor(var.batch_traits.num_results) == var.batch_traits.num_results, false)
    error_message = "batch_traits.num_results must be null (num_results) or a whole number between 1 and 500."
  }

  validation {
    condition     = can(regex("^input/[A-Za-z0-9_./-]{1,900}$", var.batch_traits.users_key)) && !strcontains(var.batch_traits.users_key, "..")
    error_message = "batch_traits.users_key must be an S3 key under input/ (letters, digits, _ . / -; no '..')."
  }

  validation {
    condition     = var.batch_traits.batch_size >= 1 && var.batch_traits.batch_size <= 10 && floor(var.batch_traits.batch_size) == var.batch_traits.batch_size
    error_message = "batch_traits.batch_size must be a whole number from 1 to 10."
  }

  validation {
    condition     = var.batch_traits.max_receive_count >= 1 && var.batch_traits.max_receive_count <= 1000 && floor(var.batch_traits.max_receive_count) == var.batch_traits.max_receive_count
    error_message = "batch_traits.max_receive_count must be a whole number from 1 to 1000."
  }

  validation {
    condition     = var.batch_traits.files_expiration_days >= 1 && floor(var.batch_traits.files_expiration_days) == var.batch_traits.files_expiration_days
    error_message = "batch_traits.files_expiration_days must be a whole number >= 1."
  }

  validation {
    condition     = var.batch_traits.reports_expiration_days >= var.batch_traits.files_expiration_days && floor(var.batch_traits.reports_expiration_days) == var.batch_traits.reports_expiration_days
    error_message = "batch_traits.reports_expiration_days must be a whole number, at least batch_traits.files_expiration_days."
  }

  validation {
    condition     = var.batch_traits.memory_size >= 128 && var.batch_traits.memory_size <= 10240
    error_message = "batch_traits.memory_size must be between 128 and 10240 MB."
  }

  validation {
    condition     = var.batch_traits.timeout >= 60 && var.batch_traits.timeout <= 900
    error_message = "batch_traits.timeout must be between 60 and 900 seconds."
  }

  validation {
    condition     = !var.batch_traits.profile_exclusion || var.segment_space_id != null
    error_message = "batch_traits.profile_exclusion = true needs segment_space_id (and the Profile API token, segment_profile_token)."
  }
}

# ---- Alarms -----------------------------------------------------------------------------

variable "alarms" {
  description = <<-EOT
    The alarms, the topic they notify and the dashboard.
    - sns_topic_arn: Existing SNS topic notified on alarm and recovery; null creates <name_prefix>-alarms (create_sns_topic).
    - create_sns_topic: Create the SNS topic <name_prefix>-alarms (when sns_topic_arn is null). Off leaves the alarms notifying nobody.
    - email: Optional e-mail address subscribed to the created topic (confirm the mail AWS sends).
    - api_4xx_percent: Alarm when more than this percentage (0-100] of API requests answer 4XX (403 missing key, 400, 429 throttled) in a period with at least api_4xx_min_requests requests.
    - api_4xx_min_requests: Requests a period needs before the 4XX rate counts (>= 1; a handful of bad calls is not an incident).
    - api_p99_latency_ms: Alarm when the API's p99 latency stays above this many milliseconds (>= 1) for two periods.
    - iterator_age_seconds: Alarm when update_traits is this many seconds (>= 1) behind the stream, or the oldest trailing refresh this long past its coalescing window (update_traits.min_refresh_interval_seconds).
    - stalled_periods: Consecutive periods with records arriving and no invocation before the stalled-mapping alarm fires (1-24).
    - failed_records_periods: Consecutive periods with records reported for retry before the failed-records alarm fires (1-24; a single blip is retried and usually heals).
    - period_seconds: Length of one evaluation period, a multiple of 60.
    - create_dashboard: Create the CloudWatch dashboard <name_prefix>-operations.
  EOT
  type = object({
    sns_topic_arn          = optional(string)
    create_sns_topic       = optional(bool, true)
    email                  = optional(string)
    api_4xx_percent        = optional(number, 10)
    api_4xx_min_requests   = optional(number, 20)
    api_p99_latency_ms     = optional(number, 3000)
    iterator_age_seconds   = optional(number, 300)
    stalled_periods        = optional(number, 3)
    failed_records_periods = optional(number, 2)
    period_seconds         = optional(number, 300)
    create_dashboard       = optional(bool, true)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.alarms.sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alarms.sns_topic_arn))
    error_message = "alarms.sns_topic_arn must be null or an SNS topic ARN."
  }

  validation {
    condition     = var.alarms.email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarms.email))
    error_message = "alarms.email must be null or an e-mail address."
  }

  validation {
    condition     = var.alarms.api_4xx_percent > 0 && var.alarms.api_4xx_percent <= 100
    error_message = "alarms.api_4xx_percent must be within (0, 100]."
  }

  validation {
    condition     = var.alarms.api_4xx_min_requests >= 1
    error_message = "alarms.api_4xx_min_requests must be >= 1."
  }

  validation {
    condition     = var.alarms.api_p99_latency_ms >= 1
    error_message = "alarms.api_p99_latency_ms must be >= 1."
  }

  validation {
    condition     = var.alarms.iterator_age_seconds >= 1
    error_message = "alarms.iterator_age_seconds must be >= 1."
  }

  validation {
    condition     = var.alarms.stalled_periods >= 1 && var.alarms.stalled_periods <= 24 && floor(var.alarms.stalled_periods) == var.alarms.stalled_periods
    error_message = "alarms.stalled_periods must be a whole number between 1 and 24."
  }

  validation {
    condition     = var.alarms.failed_records_periods >= 1 && var.alarms.failed_records_periods <= 24 && floor(var.alarms.failed_records_periods) == var.alarms.failed_records_periods
    error_message = "alarms.failed_records_periods must be a whole number between 1 and 24."
  }

  validation {
    condition     = var.alarms.period_seconds >= 60 && var.alarms.period_seconds % 60 == 0
    error_message = "alarms.period_seconds must be a multiple of 60."
  }
}
