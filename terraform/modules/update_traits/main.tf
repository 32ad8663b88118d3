# Kinesis (Segment events) -> update_traits -> Personalize -> Segment identify.
#
# Two queues, two kinds of failure:
# - dead_letter: records that can never succeed (not JSON, ...); the function writes them.
# - failed_batches: the mapping's on-failure destination; Lambda writes the shard and
#   sequence range of a batch that ran out of retries or age, so it can be replayed.
# And the user-state store's refresh queue: the function defers a user's trailing refresh
# there (a delayed message) and consumes it itself through a second, SQS, mapping.

data "aws_region" "current" {}

locals {
  function_name = "${var.deployment.name_prefix}-update-traits"
  region        = data.aws_region.current.name

  # Optional settings are left out rather than set empty. The queue URL is merged after
  # filtering: it is unknown until apply, and the set of names must be known at plan.
  environment = merge(var.settings.extra_environment, {
    for name, value in {
      PERSONALIZE_CAMPAIGN_ARN        = var.personalize.campaign_arn
      PERSONALIZE_FILTER_ARN          = var.personalize.filter_arn
      PERSONALIZE_TRACKING_ID         = var.personalize.tracking_id
      NUM_RESULTS                     = tostring(var.personalize.num_results)
      SEGMENT_WRITE_KEY_PARAMETER     = var.segment.write_key_parameter.name
      SEGMENT_PROFILE_TOKEN_PARAMETER = try(var.segment.profile_token_parameter.name, null)
      SEGMENT_SPACE_ID                = var.segment.space_id
      SEGMENT_API_URL                 = var.segment.api_url
      SEGMENT_PROFILE_API_URL         = var.segment.profile_api_url
      SEGMENT_PROFILE_API_RPS         = var.segment.space_id != null && var.segment.profile_api_rps != null ? format("%.3f", var.segment.profile_api_rps) : null
      WORKER_THREADS                  = tostring(var.settings.worker_threads)
      TRACKED_EVENTS                  = join(",", var.segment.tracked_events)
      PURCHASE_EVENTS                 = join(",", var.segment.purchase_events)
      ITEM_ID_PROPERTY                = var.segment.item_id_property
      RECOMMENDED_TRAIT               = var.segment.recommended_trait
      PURCHASED_TRAIT                 = var.segment.purchased_trait
      LOG_HASH_KEY_PARAMETER          = try(var.log_hash_key_parameter.name, null)
    } : name => value if value != null && value != ""
  }, { DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dead_letter.url }, local.user_state_environment)

  # The user-state store and refresh coalescing (issue 20): always set, so the function
  # never falls back to a Profile API read per refreshed user.
  user_state_environment = {
    USER_STATE_TABLE        = var.user_state.table_name
    USER_STATE_TTL_DAYS     = tostring(var.user_state.ttl_days)
    MIN_REFRESH_INTERVAL_S  = tostring(var.settings.min_refresh_interval_seconds)
    REFRESH_QUEUE_URL       = aws_sqs_queue.refresh.url
    SEED_WAIT               = tostring(var.settings.wait_for_seed)
    RESEED_INTERVAL_SECONDS = tostring(var.settings.reseed_interval_seconds)
  }

  personalize_resources = compact([var.personalize.campaign_arn, var.personalize.filter_arn])
  parameter_arns = compact([
    var.segment.write_key_parameter.arn,
    try(var.segment.profile_token_parameter.arn, null),
    try(var.log_hash_key_parameter.arn, null),
  ])

  # Lambda decodes the record data and matches it; records that do not match (and records
  # that are not JSON at all) are skipped without invoking the function.
  # Purchase events always reach the function (they exclude what was just bought), even
  # when they are not tracked.
  filter_pattern = jsonencode({
    data = {
      type  = ["track"]
      event = distinct(concat(var.segment.tracked_events, var.segment.purchase_events))
    }
  })
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.deployment.name_prefix}-traits-dead-letter"
  message_retention_seconds = var.settings.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.deployment.tags
}

resource "aws_sqs_queue" "failed_batches" {
  name                      = "${var.deployment.name_prefix}-traits-failed-batches"
  message_retention_seconds = var.settings.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.deployment.tags
}

# Trailing refreshes (issue 20): a delayed message per deferred user, consumed by this same
# function. Lambda's guide for SQS event sources: a visibility timeout of at least six times
# the function's timeout (time for Lambda to retry a throttled batch; Lambda refuses a
# mapping whose function outlasts it), and a redrive policy so that a message failing again
# and again ends in a dead-letter queue.
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
resource "aws_sqs_queue" "refresh" {
  name                       = "${var.deployment.name_prefix}-traits-refresh"
  visibility_timeout_seconds = var.settings.timeout * 6
  message_retention_seconds  = 345600 # 4 days (SQS's default): a stalled mapping loses none for a long week-end
  sqs_managed_sse_enabled    = true
  tags                       = var.deployment.tags

  lifecycle {
    ignore_changes = [redrive_policy] # owned by aws_sqs_queue_redrive_policy.refresh
  }
}

# Its own resource, as the batch module's chunk queue: the queue-attribute resources compare
# policies as JSON, not as text (the queue's own argument saw a whitespace-only change after
# every apply to the test stack's SQS).
resource "aws_sqs_queue_redrive_policy" "refresh" {
  queue_url = aws_sqs_queue.refresh.id
  # Five receives: a throttled or failed batch comes back after the visibility timeout, and
  # transient failures (Personalize, Segment) get retried before a message is set aside.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = 5
  })
}

data "aws_iam_policy_document" "function" {
  statement {
    sid = "ReadSegmentStream"
    # What the event source mapping needs for a standard iterator (Lambda developer guide,
    # "Process Kinesis records"). No ListStreams: the mapping names its stream.
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [var.stream_arn]
  }

  statement {
    sid       = "GetRecommendations"
    actions   = ["personalize:GetRecommendations"]
    resources = local.personalize_resources
  }

  dynamic "statement" {
    for_each = var.personalize.tracking_id == null ? [] : [1]
    content {
      sid     = "PutInteractionEvents"
      actions = ["personalize:PutEvents"]
      # Not the event tracker's ARN: the Service Authorization Reference lists an
      # eventTracker resource type (arn:<partition>:personalize:<region>:<account>:event-tracker/<id>)
      # for PutEvents, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonpersonalize.html,
      # but the request names the tracker only by its tracking id, and Personalize's own
      # reference requires "*": "If you use an AWS Lambda function to call the PutEvents
      # operation, your function's execution role must have permission to perform the
      # personalize:PutEvents action with the wildcard * in the Resource element",
      # https://docs.aws.amazon.com/personalize/latest/dg/API_UBS_PutEvents.html.
      # One action only.
      resources = ["*"]
    }
  }

  statement {
    sid       = "ReadSegmentCredentials"
    actions   = ["ssm:GetParameter"]
    resources = local.parameter_arns
  }

  statement {
    sid = "SendFailedRecords"
    # dead_letter: written by the function; failed_batches: written by the event source
    # mapping, which uses this role.
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn, aws_sqs_queue.failed_batches.arn]
  }

  # The user-state store (issue 20): exactly the three item operations of
  # functions/common/userstate.py, on this table only.
  statement {
    sid       = "UseUserStateStore"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
    resources = [var.user_state.table_arn]
  }

  statement {
    sid       = "DeferRefreshes"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.refresh.arn]
  }

  statement {
    sid = "ConsumeRefreshQueue"
    # What the SQS event source mapping does with the function's role (Lambda developer
    # guide, "Using Lambda with Amazon SQS": execution role permissions).
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.refresh.arn]
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "UseUserStateKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # DynamoDB decrypts the table key with the caller's own permissions (and again after
      # five idle minutes), and only through DynamoDB.
      # https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "DecryptWithCustomerKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # Only through the services that hold our data: the stream and the SecureStrings.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["kinesis.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

module "function" {
  source = "../lambda_function"

  function_name        = local.function_name
  description          = "Kinesis (Segment events) -> Personalize -> Segment identify with recommended items."
  zip_path             = var.zip_path
  memory_size          = var.settings.memory_size
  timeout              = var.settings.timeout
  reserved_concurrency = var.settings.reserved_concurrency
  environment          = local.environment
  policy_json          = data.aws_iam_policy_document.function.json
  role_name            = "${var.deployment.name_prefix}-traits-${local.region}"
  lambda               = var.lambda
  deployment           = var.deployment
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn  = var.stream_arn
  function_name     = module.function.function_arn
  starting_position = var.settings.starting_position

  batch_size                         = var.settings.batch_size
  maximum_batching_window_in_seconds = var.settings.batching_window_seconds
  parallelization_factor             = var.settings.parallelization_factor
  maximum_retry_attempts             = var.settings.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.settings.maximum_record_age_seconds
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failed_batches.arn
    }
  }

  dynamic "filter_criteria" {
    for_each = var.settings.filter_relevant_events ? [1] : []
    content {
      filter {
        pattern = local.filter_pattern
      }
    }
  }

  tags = var.deployment.tags
}

# The refresh queue's consumer: the same function, a partial batch response per message.
resource "aws_lambda_event_source_mapping" "refresh" {
  event_source_arn        = aws_sqs_queue.refresh.arn
  function_name           = module.function.function_arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.settings.refresh_max_concurrency # SQS mappings accept 2..1000 (the root validates it)
  }

  tags = var.deployment.tags
}
