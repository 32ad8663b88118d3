# Segment x Amazon Personalize activation: one apply deploys the whole path.
#
#   Segment --(Amazon Kinesis destination, our role)--> Kinesis stream
#     --> update_traits --> Personalize PutEvents / GetRecommendations --> Segment identify
#   caller --(x-api-key)--> API Gateway GET /recommendations --> recommendations --> Personalize
#   browser --(CORS preflight, optional)--> API Gateway OPTIONS /recommendations --> recommendations
#
# Personalize resources (campaign or recommender, event tracker, filter) are created
# outside Terraform; they come in as ARNs and ids.

locals {
  build_dir = "${path.module}/../build"

  recommendations_zip = coalesce(var.recommendations_zip_path, "${local.build_dir}/recommendations/function.zip")
  update_traits_zip   = coalesce(var.update_traits_zip_path, "${local.build_dir}/update_traits/function.zip")
  layer_zip           = coalesce(var.layer_zip_path, "${local.build_dir}/layer.zip")

  segment_urls = {
    us = { api = "https://api.segment.io/v1", profile = "https://profiles.segment.com/v1" }
    eu = { api = "https://events.eu1.segmentapis.com/v1", profile = "https://profiles.euw1.segment.com/v1" }
  }
  segment_api_url         = coalesce(var.segment_api_url, local.segment_urls[var.segment_region].api)
  segment_profile_api_url = coalesce(var.segment_profile_api_url, local.segment_urls[var.segment_region].profile)

  # One Segment Profile API budget for the space, split between every container that can
  # run at once: the traits side runs at most shards x parallelization factor (on-demand
  # streams start with 4 shards), capped by its reserved concurrency; the API at most its
  # reserved concurrency, or API Gateway's burst limit without one. Each container gets
  # the same share. A container sends at most ceil(share) requests in any sliding second,
  # so a share of 1 or more is rounded down to a whole number: then even with every
  # container sending at the same instant no second passes the budget. Below 1 (more
  # containers than requests/s) that bound is containers x 1: see worst_second.
  traits_max_concurrency = (
    var.kinesis_stream_mode == "PROVISIONED"
    ? (var.traits_reserved_concurrency >= 1 ? min(var.traits_reserved_concurrency, var.kinesis_shard_count * var.traits_parallelization_factor) : var.kinesis_shard_count * var.traits_parallelization_factor)
    : (var.traits_reserved_concurrency >= 1 ? var.traits_reserved_concurrency : 4 * var.traits_parallelization_factor)
  )
  # The API reads profiles only with exclusion on; off, the traits side gets the whole budget.
  api_reads_profiles        = var.segment_space_id != null && var.recommendations_purchase_exclusion
  api_max_concurrency       = !local.api_reads_profiles ? 0 : var.recommendations_reserved_concurrency >= 1 ? var.recommendations_reserved_concurrency : max(1, var.api_throttling_burst_limit)
  profile_api_containers    = local.traits_max_concurrency + local.api_max_concurrency
  profile_api_ratio         = var.segment_profile_api_rps / local.profile_api_containers
  profile_api_per_container = local.profile_api_ratio >= 1 ? floor(local.profile_api_ratio) : floor(local.profile_api_ratio * 1000) / 1000
  profile_api_budget = {
    requests_per_second = var.segment_profile_api_rps
    per_container       = local.profile_api_per_container
    worst_second        = local.profile_api_containers * ceil(local.profile_api_per_container)
    update_traits = {
      max_concurrency = local.traits_max_concurrency
      share           = local.profile_api_per_container * local.traits_max_concurrency
    }
    recommendations = {
      max_concurrency = local.api_max_concurrency
      share           = local.profile_api_per_container * local.api_max_concurrency
    }
  }

  tracing_mode = var.tracing_enabled ? "Active" : "PassThrough"
  tags         = merge(var.tags, { "segment-personalize:deployment" = var.name_prefix })
}

check "profile_api_budget" {
  assert {
    condition     = local.profile_api_budget.worst_second <= var.segment_profile_api_rps
    error_message = "More containers (${local.profile_api_containers}) can read the Segment Profile API at once than segment_profile_api_rps allows in one second: lower traits_reserved_concurrency / recommendations_reserved_concurrency, or set recommendations_purchase_exclusion = false."
  }
}

resource "aws_lambda_layer_version" "dependencies" {
  layer_name               = "${var.name_prefix}-dependencies"
  description              = "Third-party runtime dependencies of both functions (requirements/runtime.txt)."
  filename                 = local.layer_zip
  source_code_hash         = filebase64sha256(local.layer_zip)
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = [var.lambda_architecture]
}

module "segment_secrets" {
  source = "./modules/segment_secrets"

  name_prefix          = var.name_prefix
  write_key            = var.segment_write_key
  create_profile_token = var.segment_space_id != null
  profile_token        = var.segment_profile_token
  kms_key_arn          = var.kms_key_arn
  tags                 = local.tags
}

module "segment_destination" {
  source = "./modules/segment_kinesis_destination"

  name_prefix     = var.name_prefix
  external_ids    = var.segment_external_ids
  stream_mode     = var.kinesis_stream_mode
  shard_count     = var.kinesis_shard_count
  retention_hours = var.kinesis_retention_hours
  kms_key_arn     = var.kms_key_arn

  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary

  tags = local.tags
}

module "traits_sync" {
  source = "./modules/traits_sync"

  name_prefix          = var.name_prefix
  zip_path             = local.update_traits_zip
  layer_arns           = [aws_lambda_layer_version.dependencies.arn]
  runtime              = var.lambda_runtime
  architecture         = var.lambda_architecture
  memory_size          = var.traits_memory_size
  timeout              = var.traits_timeout
  reserved_concurrency = var.traits_reserved_concurrency
  tracing_mode         = local.tracing_mode
  log_retention_days   = var.log_retention_days
  extra_environment    = var.traits_extra_environment

  stream_arn  = module.segment_destination.stream_arn
  kms_key_arn = var.kms_key_arn

  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary

  personalize_campaign_arn     = var.personalize_campaign_arn
  personalize_filter_arn       = var.personalize_filter_arn
  personalize_tracking_id      = var.personalize_tracking_id
  num_results                  = var.num_results
  write_key_parameter_name     = module.segment_secrets.write_key_parameter_name
  write_key_parameter_arn      = module.segment_secrets.write_key_parameter_arn
  profile_token_parameter_name = module.segment_secrets.profile_token_parameter_name
  profile_token_parameter_arn  = module.segment_secrets.profile_token_parameter_arn
  segment_space_id             = var.segment_space_id
  segment_api_url              = local.segment_api_url
  segment_profile_api_url      = local.segment_profile_api_url
  tracked_events               = var.tracked_events
  purchase_events              = var.purchase_events
  item_id_property             = var.item_id_property
  recommended_trait            = var.recommended_trait
  purchased_trait              = var.purchased_trait
  profile_api_rps              = local.profile_api_per_container
  worker_threads               = var.traits_worker_threads

  batch_size                         = var.traits_batch_size
  maximum_batching_window_in_seconds = var.traits_batching_window_seconds
  parallelization_factor             = var.traits_parallelization_factor
  maximum_retry_attempts             = var.traits_maximum_retry_attempts
  maximum_record_age_in_seconds      = var.traits_maximum_record_age_seconds
  starting_position                  = var.traits_starting_position
  filter_relevant_events             = var.traits_filter_relevant_events

  tags = local.tags
}

module "recommendations_api" {
  source = "./modules/recommendations_api"

  name_prefix          = var.name_prefix
  zip_path             = local.recommendations_zip
  layer_arns           = [aws_lambda_layer_version.dependencies.arn]
  runtime              = var.lambda_runtime
  architecture         = var.lambda_architecture
  memory_size          = var.recommendations_memory_size
  timeout              = var.recommendations_timeout
  reserved_concurrency = var.recommendations_reserved_concurrency
  tracing_mode         = local.tracing_mode
  log_retention_days   = var.log_retention_days
  extra_environment    = var.recommendations_extra_environment

  personalize_campaign_arn     = var.personalize_campaign_arn
  personalize_filter_arn       = var.personalize_filter_arn
  num_results                  = var.num_results
  profile_token_parameter_name = local.api_reads_profiles ? module.segment_secrets.profile_token_parameter_name : null

  personalize_related_items_arn    = var.personalize_related_items_arn
  personalize_ranking_campaign_arn = var.personalize_ranking_campaign_arn
  personalize_filters              = var.personalize_filters
  personalize_filter_parameters    = var.personalize_filter_parameters
  personalize_promotions           = var.personalize_promotions
  item_metadata_columns            = var.item_metadata_columns
  cache_max_age_seconds            = var.api_cache_max_age_seconds
  profile_token_parameter_arn      = local.api_reads_profiles ? module.segment_secrets.profile_token_parameter_arn : null
  kms_key_arn                      = var.kms_key_arn
  segment_space_id                 = local.api_reads_profiles ? var.segment_space_id : null
  segment_profile_api_url          = local.segment_profile_api_url
  purchase_events                  = var.purchase_events
  purchased_trait                  = var.purchased_trait
  profile_api_rps                  = local.profile_api_per_container
  profile_workers                  = var.recommendations_profile_workers

  stage_name                 = var.api_stage_name
  api_key_required           = var.api_key_required
  cors_allow_origins         = var.cors_allow_origins
  throttling_rate_limit      = var.api_throttling_rate_limit
  throttling_burst_limit     = var.api_throttling_burst_limit
  quota_limit                = var.api_quota_limit
  quota_period               = var.api_quota_period
  access_log_retention_days  = var.api_access_log_retention_days
  manage_api_gateway_account = var.manage_api_gateway_account
  waf_web_acl_arn            = var.api_waf_web_acl_arn
  iam_role_path              = var.iam_role_path
  iam_permissions_boundary   = var.iam_permissions_boundary

  tags = local.tags
}

module "alarms" {
  source = "./modules/alarms"

  name_prefix = var.name_prefix
  function_names = {
    recommendations = module.recommendations_api.function_name
    update-traits   = module.traits_sync.function_name
  }
  stream_consumer_function_name  = module.traits_sync.function_name
  stream_name                    = module.segment_destination.stream_name
  iterator_age_threshold_seconds = var.iterator_age_alarm_seconds
  queue_names = {
    traits-dead-letter    = module.traits_sync.dead_letter_queue_name
    traits-failed-batches = module.traits_sync.failed_batches_queue_name
  }
  api_name             = module.recommendations_api.rest_api_name
  api_stage_name       = module.recommendations_api.stage_name
  api_4xx_rate_percent = var.api_4xx_alarm_percent
  api_p99_latency_ms   = var.api_p99_latency_alarm_ms
  sns_topic_arn        = var.alarm_sns_topic_arn
  create_sns_topic     = var.create_alarm_sns_topic
  alarm_email          = var.alarm_email
  kms_key_arn          = var.kms_key_arn
  tags                 = local.tags
}
