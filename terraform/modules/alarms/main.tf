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
  create_topic = var.settings.sns_topic_arn == null && var.settings.create_sns_topic
  actions      = compact([var.settings.sns_topic_arn, one(aws_sns_topic.this[*].arn)])
  period       = var.settings.period_seconds
  api_enabled  = var.api_name != null
  api_dims     = { ApiName = var.api_name, Stage = var.api_stage_name }

  emf = {
    traits = { deployment = var.deployment.name_prefix, service = "update_traits" }
    reco   = { deployment = var.deployment.name_prefix, service = "recommendations" }
  }

  # The store's item operations (functions/common/userstate.py), by metric-math id.
  store_operations = { get = "GetItem", batch_get = "BatchGetItem", update = "UpdateItem" }

  # Every alarm, one definition each: one metric and statistic, or (with queries) a metric
  # math expression over several. The resource below fills in what they all share.
  definitions = merge(
    {
      for label, name in var.function_names : "${label}-errors" => {
        description = "${name} failed (unhandled exception or timeout). See its log group."
        metric      = { namespace = "AWS/Lambda", name = "Errors", dimensions = { FunctionName = name }, stat = "Sum" }
        threshold   = 0
      }
    },
    {
      for label, name in var.function_names : "${label}-throttles" => {
        description = "${name} was throttled: its reserved concurrency (or the account's) is too low for the load."
        metric      = { namespace = "AWS/Lambda", name = "Throttles", dimensions = { FunctionName = name }, stat = "Sum" }
        threshold   = 0
      }
    },
    {
      for label, name in var.queue_names : "${label}-not-empty" => {
        description = "Messages are waiting in ${name}: records or batches that were given up on. Inspect them with scripts/bundle dlq list / replay-failed."
        metric      = { namespace = "AWS/SQS", name = "ApproximateNumberOfMessagesVisible", dimensions = { QueueName = name }, stat = "Maximum" }
        threshold   = 0
      }
    },
    {
      stream-iterator-age = {
        description = "${var.stream_consumer_function_name} is behind the Kinesis stream; records reaching the maximum record age go to the on-failure queue."
        metric      = { namespace = "AWS/Lambda", name = "IteratorAge", dimensions = { FunctionName = var.stream_consumer_function_name }, stat = "Maximum" }
        threshold   = var.settings.iterator_age_seconds * 1000
      }
      update-traits-failed-records = {
        description = "update_traits reported records for retry (Personalize, Segment or the Profile API failing, or a time budget exhausted). Its log line \"batch processed\" names the failureReasons."
        metric      = { namespace = var.metrics_namespace, name = "FailedRecords", dimensions = local.emf.traits, stat = "Sum" }
        threshold   = 0
        periods     = var.settings.failed_records_periods
      }
      update-traits-dead-lettered = {
        description = "update_traits dead-lettered records that can never succeed (bad data). scripts/bundle dlq list shows them with their reason."
        metric      = { namespace = var.metrics_namespace, name = "DeadLettered", dimensions = local.emf.traits, stat = "Sum" }
        threshold   = 0
      }
      update-traits-secret-errors = {
        description = "update_traits cannot read a Segment secret (missing, placeholder, empty or not a SecureString): no trait is written, every record is retried. Set it with scripts/bundle set-secrets."
        metric      = { namespace = var.metrics_namespace, name = "SecretErrors", dimensions = local.emf.traits, stat = "Sum" }
        threshold   = 0
      }
      update-traits-configuration-errors = {
        description = "update_traits has a missing or invalid setting (its log line names it): every record is retried until it is fixed."
        metric      = { namespace = var.metrics_namespace, name = "ConfigurationErrors", dimensions = local.emf.traits, stat = "Sum" }
        threshold   = 0
      }
      recommendations-configuration-errors = {
        description = "The recommendations function answers 500 configuration_error: a missing or invalid setting, or an ARN Personalize refuses (its log line names it)."
        metric      = { namespace = var.metrics_namespace, name = "Error_configuration_error", dimensions = local.emf.reco, stat = "Sum" }
        threshold   = 0
      }
      # Records arrive but update_traits is not invoked: the mapping is disabled, stalled,
      # or its role lost a permission. IteratorAge cannot show this (invocations emit it).
      stream-stalled = {
        description = "Records arrive in ${var.stream_name} but ${var.stream_consumer_function_name} is not invoked: check the event source mapping's state (enabled?) and LastProcessingResult. With update_traits.filter_relevant_events, a stretch of only irrelevant events also looks like this."
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
        periods     = var.settings.stalled_periods
        expression  = { id = "stalled", label = "records waiting, no invocation", value = "IF(FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)" }
        queries = {
          incoming    = { namespace = "AWS/Kinesis", name = "IncomingRecords", dimensions = { StreamName = var.stream_name }, stat = "Sum" }
          invocations = { namespace = "AWS/Lambda", name = "Invocations", dimensions = { FunctionName = var.stream_consumer_function_name }, stat = "Sum" }
        }
      }
    },
    # The user-state store (issue 20). DynamoDB publishes ThrottledRequests and SystemErrors
    # per table AND operation (no TableName-only series), so each alarm sums the operations
    # the functions call; ReadThrottleEvents (per table) also counts a BatchGetItem that was
    # only partly throttled (its unprocessed keys are retried).
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
    {
      for key, alarm in {
        user-state-throttles = {
          description = "DynamoDB throttled requests to ${try(var.user_state.table_name, "")} (an on-demand table past twice its previous peak, or the account's table limit): the functions retry, then report the records for retry. See the table's Monitor tab."
          threshold   = 0
          expression  = { id = "throttled", label = "throttled requests and read events", value = "${join(" + ", [for id in keys(local.store_operations) : "FILL(${id}, 0)"])} + FILL(read_events, 0)" }
          queries = merge(
            { for id, operation in local.store_operations : id => { namespace = "AWS/DynamoDB", name = "ThrottledRequests", dimensions = { TableName = try(var.user_state.table_name, ""), Operation = operation }, stat = "Sum" } },
            { read_events = { namespace = "AWS/DynamoDB", name = "ReadThrottleEvents", dimensions = { TableName = try(var.user_state.table_name, "") }, stat = "Sum" } },
          )
        }
        user-state-system-errors = {
          description = "DynamoDB answered 500 to requests on ${try(var.user_state.table_name, "")} (a service-side fault): the functions retry, then report the records for retry."
          threshold   = 0
          expression  = { id = "errors", label = "system errors", value = join(" + ", [for id in keys(local.store_operations) : "FILL(${id}, 0)"]) }
          queries = {
            for id, operation in local.store_operations : id => { namespace = "AWS/DynamoDB", name = "SystemErrors", dimensions = { TableName = try(var.user_state.table_name, ""), Operation = operation }, stat = "Sum" }
          }
        }
        traits-refresh-queue-age = {
          description = "The oldest trailing refresh in ${try(var.user_state.refresh_queue_name, "")} waited past its coalescing window plus ${var.settings.iterator_age_seconds} s: its mapping is disabled or throttled (update_traits' reserved concurrency), or the refreshes keep failing (they end in the dead-letter queue)."
          metric      = { namespace = "AWS/SQS", name = "ApproximateAgeOfOldestMessage", dimensions = { QueueName = try(var.user_state.refresh_queue_name, "") }, stat = "Maximum" }
          threshold   = try(var.user_state.refresh_interval_seconds, 0) + var.settings.iterator_age_seconds
        }
      } : key => alarm if var.user_state != null
    },
    {
      for key, alarm in {
        api-5xx = {
          description = "The recommendations API answered 5XX (Personalize failing or throttling past retries, a misconfiguration, a function error)."
          metric      = { namespace = "AWS/ApiGateway", name = "5XXError", dimensions = local.api_dims, stat = "Sum" }
          threshold   = 0
        }
        api-4xx-rate = {
          description = "More than ${var.settings.api_4xx_percent}% of API requests answered 4XX: callers without a valid key (403), bad parameters (400), or throttling (429: usage plan, stage limit or Personalize). The access log's status and errorType say which."
          threshold   = var.settings.api_4xx_percent
          expression  = { id = "rate", label = "4XX share of requests (%)", value = "IF(requests >= ${var.settings.api_4xx_min_requests}, 100 * errors / requests, 0)" }
          queries = {
            errors   = { namespace = "AWS/ApiGateway", name = "4XXError", dimensions = local.api_dims, stat = "Sum" }
            requests = { namespace = "AWS/ApiGateway", name = "Count", dimensions = local.api_dims, stat = "Sum" }
          }
        }
        api-latency-p99 = {
          description = "The API's p99 latency is above ${var.settings.api_p99_latency_ms} ms: Personalize slow, cold starts, or the Profile API read eating its budget."
          metric      = { namespace = "AWS/ApiGateway", name = "Latency", dimensions = local.api_dims, stat = "p99" }
          threshold   = var.settings.api_p99_latency_ms
          periods     = 2
        }
      } : key => alarm if local.api_enabled
    },
  )

  # The same shape for every alarm: what a definition leaves out takes these values.
  alarms = {
    for key, alarm in local.definitions : key => {
      description = alarm.description
      comparison  = lookup(alarm, "comparison", "GreaterThanThreshold")
      threshold   = alarm.threshold
      periods     = lookup(alarm, "periods", 1)
      metric      = lookup(alarm, "metric", null)
      expression  = lookup(alarm, "expression", null)
      queries     = lookup(alarm, "queries", {})
    }
  }
}

resource "aws_sns_topic" "this" {
  #checkov:skip=CKV_AWS_26:Encrypted with kms_key_arn when given. CloudWatch alarms cannot publish to a topic under the AWS-managed aws/sns key, so without a customer key the topic stays unencrypted (it carries alarm names and states only).
  count = local.create_topic ? 1 : 0

  name              = "${var.deployment.name_prefix}-alarms"
  kms_master_key_id = var.deployment.kms_key_arn
  tags              = var.deployment.tags
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
  count = local.create_topic && var.settings.email != null ? 1 : 0

  topic_arn = aws_sns_topic.this[0].arn
  protocol  = "email"
  endpoint  = var.settings.email
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.alarms

  alarm_name          = "${var.deployment.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  # No data means nothing happened: no errors, no failed records, no requests.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.actions
  ok_actions         = local.actions
  tags               = var.deployment.tags

  # One metric: its statistic (Sum, Maximum) or percentile (p99).
  namespace          = try(each.value.metric.namespace, null)
  metric_name        = try(each.value.metric.name, null)
  dimensions         = try(each.value.metric.dimensions, null)
  statistic          = try(startswith(each.value.metric.stat, "p") ? null : each.value.metric.stat, null)
  extended_statistic = try(startswith(each.value.metric.stat, "p") ? each.value.metric.stat : null, null)
  period             = each.value.metric == null ? null : local.period

  # Metric math: the expression's result is compared with the threshold.
  dynamic "metric_query" {
    for_each = each.value.expression == null ? [] : [each.value.expression]
    content {
      id          = metric_query.value.id
      label       = metric_query.value.label
      expression  = metric_query.value.value
      return_data = true
    }
  }

  dynamic "metric_query" {
    for_each = each.value.queries
    content {
      id = metric_query.key
      metric {
        namespace   = metric_query.value.namespace
        metric_name = metric_query.value.name
        dimensions  = metric_query.value.dimensions
        stat        = metric_query.value.stat
        period      = local.period
      }
    }
  }
}

locals {
  region = data.aws_region.current.name
  traits_metric = [
    for name in ["Records", "FailedRecords", "DeadLettered", "IdentifiesSent", "Unchanged"] :
    [var.metrics_namespace, name, "deployment", var.deployment.name_prefix, "service", "update_traits"]
  ]
  api_widget_dims = local.api_enabled ? ["ApiName", var.api_name, "Stage", var.api_stage_name] : []

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
            concat(["AWS/ApiGateway", "Count"], local.api_widget_dims),
            concat(["AWS/ApiGateway", "4XXError"], local.api_widget_dims),
            concat(["AWS/ApiGateway", "5XXError"], local.api_widget_dims),
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "API latency (ms)", region = local.region, period = local.period
          metrics = [
            concat(["AWS/ApiGateway", "Latency"], local.api_widget_dims, [{ stat = "p50" }]),
            concat(["AWS/ApiGateway", "Latency"], local.api_widget_dims, [{ stat = "p99" }]),
          ]
        }
      },
    ] : widget if local.api_enabled],
    [for widget in [
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "User-state store and trailing refreshes", region = local.region, period = local.period
          metrics = [
            ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", try(var.user_state.table_name, ""), { stat = "Sum" }],
            ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", try(var.user_state.table_name, ""), { stat = "Sum" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", try(var.user_state.refresh_queue_name, ""), { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
    ] : widget if var.user_state != null],
    [
      {
        type = "alarm", width = 24, height = 6
        properties = {
          title  = "Alarms"
          alarms = [for a in aws_cloudwatch_metric_alarm.metric : a.arn]
        }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.settings.create_dashboard ? 1 : 0

  dashboard_name = "${var.deployment.name_prefix}-operations"
  dashboard_body = jsonencode({ widgets = local.widgets })
}
