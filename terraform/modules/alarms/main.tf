# Alarms on the failures this design produces, a topic they notify, and a dashboard.
#
# update_traits reports failures in its partial batch response, so Lambda's Errors stays 0
# when Personalize, Segment or a secret fails: those alarms read the function's own EMF
# metrics (namespace var.metrics_namespace, dimensions deployment + service). A stalled or
# disabled event source mapping emits no IteratorAge at all, so it is caught by comparing
# the stream's IncomingRecords with the function's Invocations.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  create_topic = var.sns_topic_arn == null && var.create_sns_topic
  actions      = compact([var.sns_topic_arn, one(aws_sns_topic.this[*].arn)])
  period       = var.evaluation_period_seconds
  api_enabled  = var.api_name != null

  emf = {
    traits = { deployment = var.name_prefix, service = "update_traits" }
    reco   = { deployment = var.name_prefix, service = "recommendations" }
  }

  # Single-metric alarms: one definition each, so the list is easy to read and to test.
  metric_alarms = merge(
    {
      for label, name in var.function_names : "${label}-errors" => {
        description = "${name} failed (unhandled exception or timeout). See its log group."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = name }
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
    },
    {
      for label, name in var.function_names : "${label}-throttles" => {
        description = "${name} was throttled: its reserved concurrency (or the account's) is too low for the load."
        namespace   = "AWS/Lambda"
        metric      = "Throttles"
        dimensions  = { FunctionName = name }
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
    },
    {
      for label, name in var.queue_names : "${label}-not-empty" => {
        description = "Messages are waiting in ${name}: records or batches that were given up on. Inspect them with scripts/bundle dlq list / replay-failed."
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = name }
        statistic   = "Maximum"
        threshold   = 0
        periods     = 1
      }
    },
    {
      stream-iterator-age = {
        description = "${var.stream_consumer_function_name} is behind the Kinesis stream; records reaching the maximum record age go to the on-failure queue."
        namespace   = "AWS/Lambda"
        metric      = "IteratorAge"
        dimensions  = { FunctionName = var.stream_consumer_function_name }
        statistic   = "Maximum"
        threshold   = var.iterator_age_threshold_seconds * 1000
        periods     = 1
      }
      update-traits-failed-records = {
        description = "update_traits reported records for retry (Personalize, Segment or the Profile API failing, or a time budget exhausted). Its log line \"batch processed\" names the failureReasons."
        namespace   = var.metrics_namespace
        metric      = "FailedRecords"
        dimensions  = local.emf.traits
        statistic   = "Sum"
        threshold   = 0
        periods     = var.failed_records_periods
      }
      update-traits-dead-lettered = {
        description = "update_traits dead-lettered records that can never succeed (bad data). scripts/bundle dlq list shows them with their reason."
        namespace   = var.metrics_namespace
        metric      = "DeadLettered"
        dimensions  = local.emf.traits
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
      update-traits-secret-errors = {
        description = "update_traits cannot read a Segment secret (missing, placeholder, empty or not a SecureString): no trait is written, every record is retried. Set it with scripts/bundle set-secrets."
        namespace   = var.metrics_namespace
        metric      = "SecretErrors"
        dimensions  = local.emf.traits
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
      update-traits-configuration-errors = {
        description = "update_traits has a missing or invalid setting (its log line names it): every record is retried until it is fixed."
        namespace   = var.metrics_namespace
        metric      = "ConfigurationErrors"
        dimensions  = local.emf.traits
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
      recommendations-configuration-errors = {
        description = "The recommendations function answers 500 configuration_error: a missing or invalid setting, or an ARN Personalize refuses (its log line names it)."
        namespace   = var.metrics_namespace
        metric      = "Error_configuration_error"
        dimensions  = local.emf.reco
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
      }
    },
    {
      for key, alarm in {
        api-5xx = {
          description = "The recommendations API answered 5XX (Personalize failing or throttling past retries, a misconfiguration, a function error)."
          namespace   = "AWS/ApiGateway"
          metric      = "5XXError"
          dimensions  = { ApiName = var.api_name, Stage = var.api_stage_name }
          statistic   = "Sum"
          threshold   = 0
          periods     = 1
        }
      } : key => alarm if local.api_enabled
    },
  )
}

resource "aws_sns_topic" "this" {
  #checkov:skip=CKV_AWS_26:Encrypted with kms_key_arn when given. CloudWatch alarms cannot publish to a topic under the AWS-managed aws/sns key, so without a customer key the topic stays unencrypted (it carries alarm names and states only).
  count = local.create_topic ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  count = local.create_topic ? 1 : 0

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    # Only alarms of this account (confused-deputy protection).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  count = local.create_topic ? 1 : 0

  arn    = aws_sns_topic.this[0].arn
  policy = data.aws_iam_policy_document.topic[0].json
}

resource "aws_sns_topic_subscription" "email" {
  count = local.create_topic && var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.this[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = local.period
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  # No data means nothing happened: no errors, no failed records, no requests.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.actions
  ok_actions         = local.actions
  tags               = var.tags
}

# Records arrive but update_traits is not invoked: the mapping is disabled, stalled, or
# its role lost a permission. IteratorAge cannot show this (it is emitted by invocations).
resource "aws_cloudwatch_metric_alarm" "stream_stalled" {
  alarm_name          = "${var.name_prefix}-stream-stalled"
  alarm_description   = "Records arrive in ${var.stream_name} but ${var.stream_consumer_function_name} is not invoked: check the event source mapping's state (enabled?) and LastProcessingResult. With traits_filter_relevant_events, a stretch of only irrelevant events also looks like this."
  evaluation_periods  = var.stalled_periods
  datapoints_to_alarm = var.stalled_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "stalled"
    label       = "records waiting, no invocation"
    expression  = "IF(FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
    return_data = true
  }

  metric_query {
    id = "incoming"
    metric {
      namespace   = "AWS/Kinesis"
      metric_name = "IncomingRecords"
      dimensions  = { StreamName = var.stream_name }
      stat        = "Sum"
      period      = local.period
    }
  }

  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = var.stream_consumer_function_name }
      stat        = "Sum"
      period      = local.period
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "api_4xx_rate" {
  count = local.api_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-api-4xx-rate"
  alarm_description   = "More than ${var.api_4xx_rate_percent}% of API requests answered 4XX: callers without a valid key (403), bad parameters (400), or throttling (429: usage plan, stage limit or Personalize). The access log's status and errorType say which."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_4xx_rate_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "rate"
    label       = "4XX share of requests (%)"
    expression  = "IF(requests >= ${var.api_4xx_min_requests}, 100 * errors / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "4XXError"
      dimensions  = { ApiName = var.api_name, Stage = var.api_stage_name }
      stat        = "Sum"
      period      = local.period
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiName = var.api_name, Stage = var.api_stage_name }
      stat        = "Sum"
      period      = local.period
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "api_latency_p99" {
  count = local.api_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-api-latency-p99"
  alarm_description   = "The API's p99 latency is above ${var.api_p99_latency_ms} ms: Personalize slow, cold starts, or the Profile API read eating its budget."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiName = var.api_name, Stage = var.api_stage_name }
  extended_statistic  = "p99"
  period              = local.period
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_p99_latency_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

locals {
  region = data.aws_region.current.name
  traits_metric = [
    for name in ["Records", "FailedRecords", "DeadLettered", "IdentifiesSent", "Unchanged"] :
    [var.metrics_namespace, name, "deployment", var.name_prefix, "service", "update_traits"]
  ]
  api_dims = local.api_enabled ? ["ApiName", var.api_name, "Stage", var.api_stage_name] : []

  widgets = concat(
    [
      {
        type = "metric", width = 12, height = 6
        properties = {
          title   = "Traits sync: records (EMF)", region = local.region, stat = "Sum", period = local.period
          metrics = local.traits_metric
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Stream in vs consumer invoked", region = local.region, stat = "Sum", period = local.period
          metrics = [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", var.stream_name],
            ["AWS/Lambda", "Invocations", "FunctionName", var.stream_consumer_function_name],
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title   = "Iterator age (ms)", region = local.region, stat = "Maximum", period = local.period
          metrics = [["AWS/Lambda", "IteratorAge", "FunctionName", var.stream_consumer_function_name]]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Parked records (queue depth)", region = local.region, stat = "Maximum", period = local.period
          metrics = [
            for name in values(var.queue_names) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Functions: errors and throttles", region = local.region, stat = "Sum", period = local.period
          metrics = concat(
            [for name in values(var.function_names) : ["AWS/Lambda", "Errors", "FunctionName", name]],
            [for name in values(var.function_names) : ["AWS/Lambda", "Throttles", "FunctionName", name]],
          )
        }
      },
    ],
    [for widget in [
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "API requests and errors", region = local.region, stat = "Sum", period = local.period
          metrics = [
            concat(["AWS/ApiGateway", "Count"], local.api_dims),
            concat(["AWS/ApiGateway", "4XXError"], local.api_dims),
            concat(["AWS/ApiGateway", "5XXError"], local.api_dims),
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "API latency (ms)", region = local.region, period = local.period
          metrics = [
            concat(["AWS/ApiGateway", "Latency"], local.api_dims, [{ stat = "p50" }]),
            concat(["AWS/ApiGateway", "Latency"], local.api_dims, [{ stat = "p99" }]),
          ]
        }
      },
    ] : widget if local.api_enabled],
    [
      {
        type = "alarm", width = 24, height = 6
        properties = {
          title = "Alarms"
          alarms = concat(
            [for a in aws_cloudwatch_metric_alarm.metric : a.arn],
            [aws_cloudwatch_metric_alarm.stream_stalled.arn],
            aws_cloudwatch_metric_alarm.api_4xx_rate[*].arn,
            aws_cloudwatch_metric_alarm.api_latency_p99[*].arn,
          )
        }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.create_dashboard ? 1 : 0

  dashboard_name = "${var.name_prefix}-operations"
  dashboard_body = jsonencode({ widgets = local.widgets })
}
