# The user-state store (issue 20), planned offline with the mocked provider: the table's
# settings (modules/user_state), the grants and settings it gives update_traits and the
# recommendations function (each only on the table's ARN), the refresh queue and its SQS
# mapping, the alarms on all of them, and the root wiring them together. Runs on a module
# (module { source }) see its resources, data sources and locals; computed ARNs and URLs
# are fixed with override_resource so the plan can compare them.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  # The root's inputs (the root runs at the end).
  personalize_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:campaign/c"
  segment_external_ids     = ["ws_test"]
  segment_space_id         = "spa_1"
  artifacts = {
    recommendations = "tests/fixtures/function.zip"
    update_traits   = "tests/fixtures/function.zip"
    layer           = "tests/fixtures/function.zip"
    batch_traits    = "tests/fixtures/function.zip"
  }

  # The modules' inputs, as the root builds them with its defaults applied.
  deployment = { name_prefix = "sp", tags = { team = "growth" }, kms_key_arn = null, iam_role_path = "/", iam_permissions_boundary = null }
  lambda     = { runtime = "python3.13", architecture = "arm64", layer_arns = [], tracing_mode = "PassThrough", log_retention_days = 30 }
  zip_path   = "tests/fixtures/function.zip"
  personalize = {
    campaign_arn = "arn:aws:personalize:us-east-1:123456789012:campaign/c"
    filter_arn   = null
    tracking_id  = null
    num_results  = 25
  }
  stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/sp-segment-events"
  segment = {
    space_id          = "spa_1"
    api_url           = "https://api.segment.io/v1"
    profile_api_url   = "https://profiles.segment.com/v1"
    profile_api_rps   = 4
    tracked_events    = ["Product Viewed", "Order Completed"]
    purchase_events   = ["Order Completed"]
    item_id_property  = "sku"
    recommended_trait = "recommended_products"
    purchased_trait   = "purchased_products"
    write_key_parameter = {
      name = "/sp/segment/write-key"
      arn  = "arn:aws:ssm:us-east-1:123456789012:parameter/sp/segment/write-key"
    }
    profile_token_parameter = {
      name = "/sp/segment/profile-token"
      arn  = "arn:aws:ssm:us-east-1:123456789012:parameter/sp/segment/profile-token"
    }
  }
  # update_traits' settings: the root's defaults.
  settings = {
    memory_size                  = 256
    timeout                      = 60
    reserved_concurrency         = 20
    worker_threads               = 8
    extra_environment            = {}
    batch_size                   = 100
    batching_window_seconds      = 5
    parallelization_factor       = 1
    maximum_retry_attempts       = 10
    maximum_record_age_seconds   = 21600
    starting_position            = "LATEST"
    filter_relevant_events       = false
    queue_retention_seconds      = 1209600
    min_refresh_interval_seconds = 30
    wait_for_seed                = false
    reseed_interval_seconds      = 0
    refresh_max_concurrency      = 2
  }
  user_state = {
    table_name = "sp-user-state"
    table_arn  = "arn:aws:dynamodb:us-east-1:123456789012:table/sp-user-state"
    ttl_days   = 400
  }
}

# ---- modules/user_state --------------------------------------------------------------------

run "the_table_is_on_demand_keyed_by_user_with_ttl_pitr_and_protection" {
  command = plan

  module {
    source = "./modules/user_state"
  }

  assert {
    condition     = aws_dynamodb_table.this.name == "sp-user-state" && aws_dynamodb_table.this.billing_mode == "PAY_PER_REQUEST"
    error_message = "The table is <name_prefix>-user-state, billed per request."
  }
  assert {
    condition     = aws_dynamodb_table.this.hash_key == "user_id" && aws_dynamodb_table.this.range_key == null && aws_dynamodb_table.this.attribute == toset([{ name = "user_id", type = "S" }])
    error_message = "One string partition key, user_id, and no other attribute declared (functions/common/userstate.py)."
  }
  assert {
    condition     = aws_dynamodb_table.this.ttl[0].attribute_name == "expires_at" && aws_dynamodb_table.this.ttl[0].enabled
    error_message = "TTL on expires_at, the attribute the store writes."
  }
  assert {
    condition     = aws_dynamodb_table.this.point_in_time_recovery[0].enabled
    error_message = "Point-in-time recovery must be on."
  }
  # Without kms_key_arn: DynamoDB's AWS owned key (enabled = false), not aws/dynamodb.
  assert {
    condition     = !aws_dynamodb_table.this.server_side_encryption[0].enabled
    error_message = "Without a customer key the table uses the AWS owned key."
  }
  assert {
    condition     = aws_dynamodb_table.this.deletion_protection_enabled && aws_dynamodb_table.this.tags == tomap({ team = "growth" })
    error_message = "Deletion protection on by default; the deployment's tags."
  }
}

run "the_table_uses_the_customer_key_and_protection_can_be_lifted" {
  command = plan

  module {
    source = "./modules/user_state"
  }

  variables {
    deployment          = { name_prefix = "sp", tags = {}, kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/0000-1111", iam_role_path = "/", iam_permissions_boundary = null }
    deletion_protection = false
  }

  assert {
    condition     = aws_dynamodb_table.this.server_side_encryption[0].enabled && aws_dynamodb_table.this.server_side_encryption[0].kms_key_arn == "arn:aws:kms:us-east-1:123456789012:key/0000-1111"
    error_message = "With kms_key_arn the table is encrypted with that key."
  }
  assert {
    condition     = !aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "deletion_protection = false lifts it."
  }
}

# ---- modules/update_traits -------------------------------------------------------------------

run "update_traits_reads_and_writes_only_the_table_and_consumes_its_refresh_queue" {
  command = plan

  module {
    source = "./modules/update_traits"
  }

  override_resource {
    target          = aws_sqs_queue.refresh
    override_during = plan
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:sp-traits-refresh"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/sp-traits-refresh"
    }
  }

  override_resource {
    target          = aws_sqs_queue.dead_letter
    override_during = plan
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:sp-traits-dead-letter"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/sp-traits-dead-letter"
    }
  }

  override_resource {
    target          = aws_sqs_queue.failed_batches
    override_during = plan
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:sp-traits-failed-batches"
    }
  }

  # The store's three item operations, on the table's ARN and nothing else; no other
  # statement names a dynamodb: action.
  assert {
    condition = [
      for s in data.aws_iam_policy_document.function.statement : [s.actions, s.resources] if s.sid == "UseUserStateStore"
    ] == [[toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"]), toset([var.user_state.table_arn])]]
    error_message = "UseUserStateStore: GetItem, BatchGetItem, UpdateItem on the table ARN only."
  }
  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.function.statement :
      s.resources == toset([var.user_state.table_arn]) if anytrue([for a in s.actions : startswith(a, "dynamodb:")])
    ])
    error_message = "Every dynamodb: action is on the table ARN only."
  }
  assert {
    condition = [
      for s in data.aws_iam_policy_document.function.statement : [s.actions, s.resources] if contains(["DeferRefreshes", "ConsumeRefreshQueue"], s.sid)
      ] == [
      [toset(["sqs:SendMessage"]), toset(["arn:aws:sqs:us-east-1:123456789012:sp-traits-refresh"])],
      [toset(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]), toset(["arn:aws:sqs:us-east-1:123456789012:sp-traits-refresh"])],
    ]
    error_message = "The refresh queue: the function sends to it, its mapping receives, deletes and changes visibility, on that queue only."
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.function.statement : s if s.sid == "UseUserStateKey"]) == 0
    error_message = "No kms: grant without a customer key."
  }

  # The settings (issue 20's names), always set; the queue URL as the function sends to it.
  assert {
    condition = {
      for name in ["USER_STATE_TABLE", "USER_STATE_TTL_DAYS", "MIN_REFRESH_INTERVAL_S", "REFRESH_QUEUE_URL", "SEED_WAIT", "RESEED_INTERVAL_SECONDS"] :
      name => local.environment[name]
      } == {
      USER_STATE_TABLE        = "sp-user-state"
      USER_STATE_TTL_DAYS     = "400"
      MIN_REFRESH_INTERVAL_S  = "30"
      REFRESH_QUEUE_URL       = "https://sqs.us-east-1.amazonaws.com/123456789012/sp-traits-refresh"
      SEED_WAIT               = "false"
      RESEED_INTERVAL_SECONDS = "0"
    }
    error_message = "update_traits' store settings: ${jsonencode(local.environment)}"
  }

  # Lambda's SQS guide: visibility timeout >= 6 x the function timeout; redrive to the
  # dead-letter queue; SSE like the other two queues.
  assert {
    condition     = aws_sqs_queue.refresh.name == "sp-traits-refresh" && aws_sqs_queue.refresh.visibility_timeout_seconds == 360 && aws_sqs_queue.refresh.sqs_managed_sse_enabled
    error_message = "The refresh queue: 6 x 60 s visibility, SSE-SQS."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue_redrive_policy.refresh.redrive_policy) == { deadLetterTargetArn = "arn:aws:sqs:us-east-1:123456789012:sp-traits-dead-letter", maxReceiveCount = 5 }
    error_message = "A refresh failing five receives goes to the dead-letter queue."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.refresh.event_source_arn == "arn:aws:sqs:us-east-1:123456789012:sp-traits-refresh" && aws_lambda_event_source_mapping.refresh.batch_size == 10 && aws_lambda_event_source_mapping.refresh.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The refresh mapping: the queue, 10 messages a batch, partial batch responses."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.refresh.scaling_config[0].maximum_concurrency == 2
    error_message = "The refresh mapping's maximum concurrency is update_traits.refresh_max_concurrency."
  }
  # The stream's mapping is as before: a second mapping, not a replacement.
  assert {
    condition     = aws_lambda_event_source_mapping.this.event_source_arn == var.stream_arn && aws_lambda_event_source_mapping.this.starting_position == "LATEST"
    error_message = "The Kinesis mapping is unchanged."
  }
}

run "update_traits_passes_its_settings_on_and_uses_the_customer_key_through_dynamodb" {
  command = plan

  module {
    source = "./modules/update_traits"
  }

  variables {
    deployment = { name_prefix = "sp", tags = {}, kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/0000-1111", iam_role_path = "/", iam_permissions_boundary = null }
    settings = {
      memory_size                  = 256
      timeout                      = 100
      reserved_concurrency         = 20
      worker_threads               = 8
      extra_environment            = { USER_STATE_TABLE = "someone-elses", LOG_LEVEL = "DEBUG" }
      batch_size                   = 100
      batching_window_seconds      = 5
      parallelization_factor       = 1
      maximum_retry_attempts       = 10
      maximum_record_age_seconds   = 21600
      starting_position            = "LATEST"
      filter_relevant_events       = false
      queue_retention_seconds      = 1209600
      min_refresh_interval_seconds = 0
      wait_for_seed                = true
      reseed_interval_seconds      = 604800
      refresh_max_concurrency      = 7
    }
    user_state = {
      table_name = "sp-user-state"
      table_arn  = "arn:aws:dynamodb:us-east-1:123456789012:table/sp-user-state"
      ttl_days   = 30
    }
  }

  override_resource {
    target          = aws_sqs_queue.refresh
    override_during = plan
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:sp-traits-refresh"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/sp-traits-refresh"
    }
  }

  assert {
    condition = {
      for name in ["USER_STATE_TABLE", "USER_STATE_TTL_DAYS", "MIN_REFRESH_INTERVAL_S", "SEED_WAIT", "RESEED_INTERVAL_SECONDS", "LOG_LEVEL"] :
      name => local.environment[name]
      } == {
      USER_STATE_TABLE        = "sp-user-state" # the typed setting wins over extra_environment
      USER_STATE_TTL_DAYS     = "30"
      MIN_REFRESH_INTERVAL_S  = "0"
      SEED_WAIT               = "true"
      RESEED_INTERVAL_SECONDS = "604800"
      LOG_LEVEL               = "DEBUG"
    }
    error_message = "The settings reach the function: ${jsonencode(local.environment)}"
  }
  assert {
    condition     = aws_sqs_queue.refresh.visibility_timeout_seconds == 600 && aws_lambda_event_source_mapping.refresh.scaling_config[0].maximum_concurrency == 7
    error_message = "Visibility follows the function's timeout (6 x 100 s); the mapping's concurrency, refresh_max_concurrency."
  }
  assert {
    condition = jsonencode([
      for s in data.aws_iam_policy_document.function.statement : [s.actions, s.resources, [for c in s.condition : [c.test, c.variable, c.values]]] if s.sid == "UseUserStateKey"
    ]) == jsonencode([[["kms:Decrypt"], ["arn:aws:kms:us-east-1:123456789012:key/0000-1111"], [["StringEquals", "kms:ViaService", ["dynamodb.us-east-1.amazonaws.com"]]]]])
    error_message = "The customer key: kms:Decrypt through DynamoDB only."
  }
}

# ---- modules/recommendations -----------------------------------------------------------------

run "the_api_reads_purchases_from_the_table_with_getitem_only" {
  command = plan

  module {
    source = "./modules/recommendations"
  }

  variables {
    deployment = { name_prefix = "sp", tags = {}, kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/0000-1111", iam_role_path = "/", iam_permissions_boundary = null }
    settings = {
      memory_size           = 256
      timeout               = 10
      reserved_concurrency  = 50
      purchase_exclusion    = true
      profile_workers       = 4
      extra_environment     = {}
      related_items_arn     = null
      ranking_campaign_arn  = null
      filters               = {}
      filter_parameters     = {}
      promotions            = []
      item_metadata_columns = []
      cache_max_age_seconds = 0
    }
    api = {
      stage_name                 = "v1"
      key_required               = true
      cors_allow_origins         = []
      throttling_rate_limit      = 50
      throttling_burst_limit     = 100
      quota_limit                = null
      quota_period               = "MONTH"
      access_log_retention_days  = 30
      manage_api_gateway_account = false
      stage_logging              = false
      waf_web_acl_arn            = null
    }
    user_state = {
      table_name = "sp-user-state"
      table_arn  = "arn:aws:dynamodb:us-east-1:123456789012:table/sp-user-state"
    }
  }

  assert {
    condition = [
      for s in data.aws_iam_policy_document.function.statement : [s.actions, s.resources] if anytrue([for a in s.actions : startswith(a, "dynamodb:")])
    ] == [[toset(["dynamodb:GetItem"]), toset(["arn:aws:dynamodb:us-east-1:123456789012:table/sp-user-state"])]]
    error_message = "The API may only GetItem, on the table."
  }
  assert {
    condition = jsonencode([
      for s in data.aws_iam_policy_document.function.statement : [s.actions, [for c in s.condition : [c.test, c.variable, c.values]]] if s.sid == "ReadUserStateWithCustomerKey"
    ]) == jsonencode([[["kms:Decrypt"], [["StringEquals", "kms:ViaService", ["dynamodb.us-east-1.amazonaws.com"]]]]])
    error_message = "With a customer key: kms:Decrypt through DynamoDB only."
  }
  # The store replaces the Profile API here: no token, no Profile API setting.
  assert {
    condition     = local.environment["USER_STATE_TABLE"] == "sp-user-state" && length([for name in keys(local.environment) : name if startswith(name, "SEGMENT_")]) == 0
    error_message = "USER_STATE_TABLE set and no SEGMENT_* setting: ${jsonencode(local.environment)}"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.function.statement : s if anytrue([for a in s.actions : startswith(a, "ssm:")])]) == 0
    error_message = "The API reads no Segment token."
  }
}

run "the_api_without_exclusion_reads_no_store" {
  command = plan

  module {
    source = "./modules/recommendations"
  }

  variables {
    settings = {
      memory_size           = 256
      timeout               = 10
      reserved_concurrency  = 50
      purchase_exclusion    = false
      profile_workers       = 4
      extra_environment     = {}
      related_items_arn     = null
      ranking_campaign_arn  = null
      filters               = {}
      filter_parameters     = {}
      promotions            = []
      item_metadata_columns = []
      cache_max_age_seconds = 0
    }
    api = {
      stage_name                 = "v1"
      key_required               = true
      cors_allow_origins         = []
      throttling_rate_limit      = 50
      throttling_burst_limit     = 100
      quota_limit                = null
      quota_period               = "MONTH"
      access_log_retention_days  = 30
      manage_api_gateway_account = false
      stage_logging              = false
      waf_web_acl_arn            = null
    }
    user_state = null
  }

  assert {
    condition     = !contains(keys(local.environment), "USER_STATE_TABLE") && length([for s in data.aws_iam_policy_document.function.statement : s if anytrue([for a in s.actions : startswith(a, "dynamodb:")])]) == 0
    error_message = "Without the store: no USER_STATE_TABLE, no dynamodb: grant."
  }
}

# ---- modules/alarms --------------------------------------------------------------------------

run "alarms_watch_the_table_per_operation_and_the_oldest_trailing_refresh" {
  command = plan

  module {
    source = "./modules/alarms"
  }

  variables {
    settings = {
      sns_topic_arn          = "arn:aws:sns:us-east-1:123456789012:ops"
      create_sns_topic       = true
      email                  = null
      api_4xx_percent        = 10
      api_4xx_min_requests   = 20
      api_p99_latency_ms     = 3000
      iterator_age_seconds   = 300
      stalled_periods        = 3
      failed_records_periods = 2
      period_seconds         = 300
      create_dashboard       = true
    }
    function_names                = { update-traits = "sp-update-traits" }
    stream_consumer_function_name = "sp-update-traits"
    stream_name                   = "sp-segment-events"
    queue_names                   = { traits-dead-letter = "sp-traits-dead-letter" }
    user_state = {
      table_name               = "sp-user-state"
      refresh_queue_name       = "sp-traits-refresh"
      refresh_interval_seconds = 45
    }
  }

  # DynamoDB has no TableName-only ThrottledRequests or SystemErrors series: one query per
  # operation the functions call (ReadThrottleEvents is per table).
  assert {
    condition = toset(flatten([
      for q in aws_cloudwatch_metric_alarm.metric["user-state-throttles"].metric_query : [
        for m in q.metric : "${m.namespace} ${m.metric_name} ${m.dimensions["TableName"]} ${lookup(m.dimensions, "Operation", "-")} ${m.stat}"
      ]
      ])) == toset([
      "AWS/DynamoDB ThrottledRequests sp-user-state GetItem Sum",
      "AWS/DynamoDB ThrottledRequests sp-user-state BatchGetItem Sum",
      "AWS/DynamoDB ThrottledRequests sp-user-state UpdateItem Sum",
      "AWS/DynamoDB ReadThrottleEvents sp-user-state - Sum",
    ])
    error_message = "The throttle alarm sums ThrottledRequests of GetItem, BatchGetItem, UpdateItem and the table's ReadThrottleEvents."
  }
  assert {
    condition = toset(flatten([
      for q in aws_cloudwatch_metric_alarm.metric["user-state-system-errors"].metric_query : [
        for m in q.metric : "${m.metric_name} ${m.dimensions["TableName"]} ${m.dimensions["Operation"]}"
      ]
    ])) == toset(["SystemErrors sp-user-state GetItem", "SystemErrors sp-user-state BatchGetItem", "SystemErrors sp-user-state UpdateItem"])
    error_message = "The system-error alarm sums SystemErrors of the three operations."
  }
  assert {
    condition = alltrue([
      for name in ["user-state-throttles", "user-state-system-errors"] :
      aws_cloudwatch_metric_alarm.metric[name].threshold == 0 && aws_cloudwatch_metric_alarm.metric[name].comparison_operator == "GreaterThanThreshold"
    ])
    error_message = "Any throttle or system error alarms."
  }
  assert {
    condition     = length([for q in aws_cloudwatch_metric_alarm.metric["user-state-throttles"].metric_query : q if q.return_data == true]) == 1
    error_message = "One expression returns the sum."
  }
  # A trailing refresh is due at the end of its window: the oldest may be that old, plus
  # the lag the stream's alarm allows.
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.metric["traits-refresh-queue-age"].metric_name == "ApproximateAgeOfOldestMessage"
      && aws_cloudwatch_metric_alarm.metric["traits-refresh-queue-age"].namespace == "AWS/SQS"
      && aws_cloudwatch_metric_alarm.metric["traits-refresh-queue-age"].dimensions == tomap({ QueueName = "sp-traits-refresh" })
      && aws_cloudwatch_metric_alarm.metric["traits-refresh-queue-age"].statistic == "Maximum"
      && aws_cloudwatch_metric_alarm.metric["traits-refresh-queue-age"].threshold == 345
    )
    error_message = "The refresh queue's oldest message: Maximum > 45 + 300 s."
  }
}

run "alarms_without_a_store_have_none_of_its_alarms" {
  command = plan

  module {
    source = "./modules/alarms"
  }

  variables {
    settings = {
      sns_topic_arn          = null
      create_sns_topic       = false
      email                  = null
      api_4xx_percent        = 10
      api_4xx_min_requests   = 20
      api_p99_latency_ms     = 3000
      iterator_age_seconds   = 300
      stalled_periods        = 3
      failed_records_periods = 2
      period_seconds         = 300
      create_dashboard       = false
    }
    function_names                = { update-traits = "sp-update-traits" }
    stream_consumer_function_name = "sp-update-traits"
    stream_name                   = "sp-segment-events"
    queue_names                   = {}
    user_state                    = null
  }

  assert {
    condition     = length(setintersection(keys(aws_cloudwatch_metric_alarm.metric), ["user-state-throttles", "user-state-system-errors", "traits-refresh-queue-age"])) == 0
    error_message = "No store, no store alarms."
  }
}

# ---- the root ----------------------------------------------------------------------------------

run "the_root_deploys_the_store_and_wires_it_into_the_alarms" {
  command = plan

  # The root's inputs: user_state and segment in the file's block are the modules' shapes.
  variables {
    user_state = { ttl_days = 90 }
    segment    = {}
    # Decided (off): the plan does not warn that the stage logs nothing (check.api_stage_logging).
    api = { stage_logging = false }
  }

  assert {
    condition     = output.user_state_table.name == "segment-personalize-user-state"
    error_message = "The root output names the table."
  }
  assert {
    condition     = module.update_traits.refresh_queue_name == "segment-personalize-traits-refresh"
    error_message = "The refresh queue is <name_prefix>-traits-refresh."
  }
  assert {
    condition     = length(setintersection(module.alarms.alarm_names, ["segment-personalize-user-state-throttles", "segment-personalize-user-state-system-errors", "segment-personalize-traits-refresh-queue-age"])) == 3
    error_message = "The root gives the alarms module the table and the refresh queue."
  }
  # With the store, the API takes no share of the Profile API budget.
  assert {
    condition     = output.segment_profile_api_budget.recommendations == { max_concurrency = 0, share = 0 }
    error_message = "The API reads the store: no Profile API share."
  }
}
