# Segment x Amazon Personalize activation: one apply deploys the whole path.
#
#   Segment --(Amazon Kinesis destination, our role)--> Kinesis stream
#     --> update_traits --> Personalize PutEvents / GetRecommendations --> Segment identify
#   update_traits <--> user-state table (DynamoDB); deferred refreshes --> refresh queue --> update_traits
#   caller --(x-api-key)--> API Gateway GET /recommendations --> recommendations --> Personalize
#   browser --(CORS preflight, optional)--> API Gateway OPTIONS /recommendations --> recommendations
#
# Personalize resources (campaign or recommender, event tracker, filter) are created
# outside Terraform; they come in as ARNs and ids.

locals {
  build_dir = "${path.module}/../build"

  recommendations_zip = coalesce(var.artifacts.recommendations, "${local.build_dir}/recommendations/function.zip")
  update_traits_zip   = coalesce(var.artifacts.update_traits, "${local.build_dir}/update_traits/function.zip")
  layer_zip           = coalesce(var.artifacts.layer, "${local.build_dir}/layer.zip")
  batch_traits_zip    = coalesce(var.artifacts.batch_traits, "${local.build_dir}/batch_traits/function.zip")

  segment_urls = {
    us = { api = "https://api.segment.io/v1", profile = "https://profiles.segment.com/v1" }
    eu = { api = "https://events.eu1.segmentapis.com/v1", profile = "https://profiles.euw1.segment.com/v1" }
  }
  segment_api_url         = coalesce(var.segment.api_url, local.segment_urls[var.segment.region].api)
  segment_profile_api_url = coalesce(var.segment.profile_api_url, local.segment_urls[var.segment.region].profile)

  # One Segment Profile API budget for the space, split between every container that can
  # run at once. With the user-state store the API reads the store, never the Profile API:
  # the budget goes to seeding, by update_traits' containers (the stream's: shards x
  # parallelization factor, on-demand streams start with 4 shards; and the refresh queue's,
  # its mapping's maximum concurrency), all capped by its reserved concurrency, which they
  # share. Each container gets the same share. A container sends at most ceil(share)
  # requests in any sliding second, so a share of 1 or more is rounded down to a whole
  # number: then even with every container sending at the same instant no second passes the
  # budget. Below 1 (more containers than requests/s) that bound is containers x 1: see
  # worst_second.
  traits_reserved   = var.update_traits.reserved_concurrency
  traits_streams    = (var.kinesis.stream_mode == "PROVISIONED" ? var.kinesis.shard_count : 4) * var.update_traits.parallelization_factor
  traits_unreserved = local.traits_streams + var.update_traits.refresh_max_concurrency
  traits_max_concurrency = (
    var.kinesis.stream_mode == "PROVISIONED"
    ? (local.traits_reserved >= 1 ? min(local.traits_reserved, local.traits_unreserved) : local.traits_unreserved)
    : (local.traits_reserved >= 1 ? local.traits_reserved : local.traits_unreserved)
  )
  # The API excludes purchases from the store (USER_STATE_TABLE), so it takes no share.
  api_excludes_purchases = var.recommendations.purchase_exclusion
  api_max_concurrency    = 0
  # The batch write-back reads profiles only with its own exclusion on: then each of its
  # chunk workers (the SQS mapping's maximum concurrency) is one more container.
  batch_reads_profiles      = var.enable_batch_traits && var.batch_traits.profile_exclusion && var.segment_space_id != null
  batch_max_concurrency     = local.batch_reads_profiles ? var.batch_traits.max_concurrency : 0
  profile_api_containers    = local.traits_max_concurrency + local.api_max_concurrency + local.batch_max_concurrency
  profile_api_ratio         = var.segment.profile_api_rps / local.profile_api_containers
  profile_api_per_container = local.profile_api_ratio >= 1 ? floor(local.profile_api_ratio) : floor(local.profile_api_ratio * 1000) / 1000
  profile_api_budget = {
    requests_per_second = var.segment.profile_api_rps
    per_container       = local.profile_api_per_container
    worst_second        = local.profile_api_containers * ceil(local.profile_api_per_container)
    update_traits = {
      max_concurrency = local.traits_max_concurrency
      share           = local.profile_api_per_container * local.traits_max_concurrency
      # Of max_concurrency, at most this many consume the refresh queue.
      refresh_max_concurrency = var.update_traits.refresh_max_concurrency
    }
    recommendations = {
      max_concurrency = local.api_max_concurrency
      share           = local.profile_api_per_container * local.api_max_concurrency
    }
    batch_traits = {
      max_concurrency = local.batch_max_concurrency
      share           = local.profile_api_per_container * local.batch_max_concurrency
    }
  }

  tags = merge(var.tags, { "segment-personalize:deployment" = var.name_prefix })

  # What every module shares, passed down as one value each.
  deployment = {
    name_prefix              = var.name_prefix
    tags                     = local.tags
    kms_key_arn              = var.kms_key_arn
    iam_role_path            = var.iam_role_path
    iam_permissions_boundary = var.iam_permissions_boundary
  }
  lambda = {
    runtime            = var.lambda_runtime
    architecture       = var.lambda_architecture
    layer_arns         = [aws_lambda_layer_version.dependencies.arn]
    tracing_mode       = var.tracing_enabled ? "Active" : "PassThrough"
    log_retention_days = var.log_retention_days
  }
  personalize = {
    campaign_arn = var.personalize_campaign_arn
    filter_arn   = var.personalize_filter_arn
    tracking_id  = var.personalize_tracking_id
    num_results  = var.num_results
  }
  profile_token_parameter = var.segment_space_id == null ? null : {
    name = module.segment_secrets.profile_token_parameter_name
    arn  = module.segment_secrets.profile_token_parameter_arn
  }
  log_hash_key_parameter = {
    name = module.segment_secrets.log_hash_key_parameter_name
    arn  = module.segment_secrets.log_hash_key_parameter_arn
  }
}

check "profile_api_budget" {
  assert {
    condition     = local.profile_api_budget.worst_second <= var.segment.profile_api_rps
    error_message = "More containers (${local.profile_api_containers}) can read the Segment Profile API at once than segment.profile_api_rps allows in one second: lower update_traits.reserved_concurrency / update_traits.refresh_max_concurrency / batch_traits.max_concurrency, or set batch_traits.profile_exclusion = false."
  }
}

# API Gateway refuses stage logs until the region's CloudWatch role is set, and Terraform
# cannot read whether it is (modules/recommendations): unless told, the stage logs nothing.
check "api_stage_logging" {
  assert {
    condition     = var.api.stage_logging != null || var.api.manage_api_gateway_account
    error_message = "The API stage writes no access logs and no execution logs: API Gateway needs the region's CloudWatch role (cloudWatchRoleArn, its account setting) for them, and a fresh account has none. Once it is set (aws apigateway get-account shows cloudwatchRoleArn; terraform/README.md sets it in three commands), set api.stage_logging = true; or set api.manage_api_gateway_account = true in exactly one stack per region; or api.stage_logging = false to keep them off without this warning."
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

  deployment           = local.deployment
  write_key            = var.segment_write_key
  create_profile_token = var.segment_space_id != null
  profile_token        = var.segment_profile_token
}

module "segment_destination" {
  source = "./modules/segment_kinesis_destination"

  deployment   = local.deployment
  external_ids = var.segment_external_ids
  stream       = var.kinesis
}

# The user-state store (issue 20): purchases, seeds and the last refresh of each user, read
# by update_traits and the API instead of the Profile API.
module "user_state" {
  source = "./modules/user_state"

  deployment          = local.deployment
  deletion_protection = var.user_state.deletion_protection
}

module "update_traits" {
  source = "./modules/update_traits"

  deployment  = local.deployment
  lambda      = local.lambda
  zip_path    = local.update_traits_zip
  settings    = var.update_traits
  personalize = local.personalize
  stream_arn  = module.segment_destination.stream_arn
  # The functions that log user ids log them as HMAC pseudonyms under this key.
  log_hash_key_parameter = local.log_hash_key_parameter
  user_state = {
    table_name = module.user_state.table_name
    table_arn  = module.user_state.table_arn
    ttl_days   = var.user_state.ttl_days
  }
  segment = {
    space_id          = var.segment_space_id
    api_url           = local.segment_api_url
    profile_api_url   = local.segment_profile_api_url
    profile_api_rps   = local.profile_api_per_container
    tracked_events    = var.segment.tracked_events
    purchase_events   = var.segment.purchase_events
    item_id_property  = var.segment.item_id_property
    recommended_trait = var.segment.recommended_trait
    purchased_trait   = var.segment.purchased_trait
    write_key_parameter = {
      name = module.segment_secrets.write_key_parameter_name
      arn  = module.segment_secrets.write_key_parameter_arn
    }
    profile_token_parameter = local.profile_token_parameter
  }
}

module "recommendations" {
  source = "./modules/recommendations"

  deployment  = local.deployment
  lambda      = local.lambda
  zip_path    = local.recommendations_zip
  settings    = var.recommendations
  api         = var.api
  personalize = local.personalize

  log_hash_key_parameter = local.log_hash_key_parameter
  # The API reads purchases from the store, not the Profile API (its budget share goes to
  # seeding); null without purchase_exclusion: the API reads neither.
  profiles = null
  user_state = !local.api_excludes_purchases ? null : {
    table_name = module.user_state.table_name
    table_arn  = module.user_state.table_arn
  }
}

# Opt-in (issue 15): Personalize batch inference on the campaign, its output written back
# to every profile in parallel byte-range chunks (terraform/modules/batch_traits).
module "batch_traits" {
  source = "./modules/batch_traits"
  count  = var.enable_batch_traits ? 1 : 0

  deployment = local.deployment
  lambda     = local.lambda
  zip_path   = local.batch_traits_zip
  settings   = merge(var.batch_traits, { num_results = coalesce(var.batch_traits.num_results, var.num_results) })
  personalize = {
    campaign_arn = var.personalize_campaign_arn
    filter_arn   = var.personalize_filter_arn
  }
  segment = {
    space_id          = var.segment_space_id
    api_url           = local.segment_api_url
    profile_api_url   = local.segment_profile_api_url
    profile_api_rps   = local.profile_api_per_container
    recommended_trait = var.segment.recommended_trait
    purchased_trait   = var.segment.purchased_trait
    write_key_parameter = {
      name = module.segment_secrets.write_key_parameter_name
      arn  = module.segment_secrets.write_key_parameter_arn
    }
    profile_token_parameter = local.profile_token_parameter
  }
  alarm_topic_arn = module.alarms.sns_topic_arn
}

module "alarms" {
  source = "./modules/alarms"

  deployment = local.deployment
  settings   = var.alarms
  function_names = {
    recommendations = module.recommendations.function_name
    update-traits   = module.update_traits.function_name
  }
  stream_consumer_function_name = module.update_traits.function_name
  stream_name                   = module.segment_destination.stream_name
  queue_names = {
    traits-dead-letter    = module.update_traits.dead_letter_queue_name
    traits-failed-batches = module.update_traits.failed_batches_queue_name
  }
  api_name       = module.recommendations.rest_api_name
  api_stage_name = module.recommendations.stage_name
  user_state = {
    table_name               = module.user_state.table_name
    refresh_queue_name       = module.update_traits.refresh_queue_name
    refresh_interval_seconds = var.update_traits.min_refresh_interval_seconds
  }
}
