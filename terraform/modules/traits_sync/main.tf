# Kinesis (Segment events) -> update_traits -> Personalize -> Segment identify.
#
# Two queues, two kinds of failure:
# - dead_letter: records that can never succeed (not JSON, ...); the function writes them.
# - failed_batches: the mapping's on-failure destination; Lambda writes the shard and
#   sequence range of a batch that ran out of retries or age, so it can be replayed.

data "aws_region" "current" {}

locals {
  function_name = "${var.name_prefix}-update-traits"
  region        = data.aws_region.current.name

  # Optional settings are left out rather than set empty. The queue URL is merged after
  # filtering: it is unknown until apply, and the set of names must be known at plan.
  environment = merge(var.extra_environment, {
    for name, value in {
      PERSONALIZE_CAMPAIGN_ARN        = var.personalize_campaign_arn
      PERSONALIZE_FILTER_ARN          = var.personalize_filter_arn
      PERSONALIZE_TRACKING_ID         = var.personalize_tracking_id
      NUM_RESULTS                     = tostring(var.num_results)
      SEGMENT_WRITE_KEY_PARAMETER     = var.write_key_parameter_name
      SEGMENT_PROFILE_TOKEN_PARAMETER = var.profile_token_parameter_name
      SEGMENT_SPACE_ID                = var.segment_space_id
      SEGMENT_API_URL                 = var.segment_api_url
      SEGMENT_PROFILE_API_URL         = var.segment_profile_api_url
      SEGMENT_PROFILE_API_RPS         = var.segment_space_id != null && var.profile_api_rps != null ? format("%.3f", var.profile_api_rps) : null
      WORKER_THREADS                  = tostring(var.worker_threads)
      TRACKED_EVENTS                  = join(",", var.tracked_events)
      PURCHASE_EVENTS                 = join(",", var.purchase_events)
      ITEM_ID_PROPERTY                = var.item_id_property
      RECOMMENDED_TRAIT               = var.recommended_trait
      PURCHASED_TRAIT                 = var.purchased_trait
    } : name => value if value != null && value != ""
  }, { DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dead_letter.url })

  personalize_resources = compact([var.personalize_campaign_arn, var.personalize_filter_arn])
  parameter_arns        = compact([var.write_key_parameter_arn, var.profile_token_parameter_arn])

  # Lambda decodes the record data and matches it; records that do not match (and records
  # that are not JSON at all) are skipped without invoking the function.
  # Purchase events always reach the function (they exclude what was just bought), even
  # when they are not tracked.
  filter_pattern = jsonencode({
    data = {
      type  = ["track"]
      event = distinct(concat(var.tracked_events, var.purchase_events))
    }
  })
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-traits-dead-letter"
  message_retention_seconds = var.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "failed_batches" {
  name                      = "${var.name_prefix}-traits-failed-batches"
  message_retention_seconds = var.queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
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
    for_each = var.personalize_tracking_id == null ? [] : [1]
    content {
      sid     = "PutInteractionEvents"
      actions = ["personalize:PutEvents"]
      # PutEvents has no resource type in IAM (the event tracker is named by its
      # tracking id in the request), so AWS allows only "*" here.
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

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
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

  function_name            = local.function_name
  description              = "Kinesis (Segment events) -> Personalize -> Segment identify with recommended items."
  zip_path                 = var.zip_path
  layer_arns               = var.layer_arns
  runtime                  = var.runtime
  architecture             = var.architecture
  memory_size              = var.memory_size
  timeout                  = var.timeout
  reserved_concurrency     = var.reserved_concurrency
  tracing_mode             = var.tracing_mode
  log_retention_days       = var.log_retention_days
  environment              = local.environment
  policy_json              = data.aws_iam_policy_document.function.json
  deployment_name          = var.name_prefix
  kms_key_arn              = var.kms_key_arn
  role_name                = "${var.name_prefix}-traits-${local.region}"
  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary
  tags                     = var.tags
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn  = var.stream_arn
  function_name     = module.function.function_arn
  starting_position = var.starting_position

  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  parallelization_factor             = var.parallelization_factor
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failed_batches.arn
    }
  }

  dynamic "filter_criteria" {
    for_each = var.filter_relevant_events ? [1] : []
    content {
      filter {
        pattern = local.filter_pattern
      }
    }
  }

  tags = var.tags
}
