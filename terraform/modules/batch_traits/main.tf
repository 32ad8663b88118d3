# Batch backfill and scheduled refresh of the recommended-items trait on every profile.
#
#   schedule / `bundle backfill start` --> function {"action":"start"}
#     --> Personalize CreateBatchInferenceJob (input/users.json --> output/<job>/)
#   S3 ObjectCreated output/*.out --> chunk queue --> function (splitter)
#     --> chunk messages (byte ranges) --> chunk queue --> function (worker) --> Segment /v1/batch
#   a chunk failing max_receive_count times --> dead-letter queue (with its range) + alarm
#   a start that fails (the schedule invokes asynchronously) --> a retry, then the
#     start-failures queue (the invocation record) + alarm

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  function_name = "${var.deployment.name_prefix}-batch-traits"
  account_id    = data.aws_caller_identity.current.account_id
  region        = data.aws_region.current.name
  partition     = data.aws_partition.current.partition

  # Bucket names are global: the account and region keep deployments apart.
  long_bucket_name = "${var.deployment.name_prefix}-batch-${local.account_id}-${local.region}"
  bucket_name      = length(local.long_bucket_name) <= 63 ? local.long_bucket_name : "${var.deployment.name_prefix}-batch-${local.account_id}"
  bucket_arn       = "arn:${local.partition}:s3:::${local.bucket_name}"

  # IAM role names are at most 64 characters: with a 32-character name_prefix the long
  # name overflows in a 14-character region (ap-southeast-1); the short one fits up to 15
  # (us-isof-south-1). Names that fit keep the long form (no replacement on upgrade).
  long_personalize_role_name = "${var.deployment.name_prefix}-batch-personalize-${local.region}"
  personalize_role_name      = length(local.long_personalize_role_name) <= 64 ? local.long_personalize_role_name : "${var.deployment.name_prefix}-batch-inference-${local.region}"

  # Each container's share of the Segment events/s budget (Engage inbound: 1,000 events/s
  # per space; the default leaves half to the live traits sync).
  events_per_s_per_container = floor(var.settings.segment_events_per_s / var.settings.max_concurrency * 1000) / 1000

  environment = merge(var.settings.extra_environment, {
    for name, value in {
      PERSONALIZE_CAMPAIGN_ARN        = var.personalize.campaign_arn
      PERSONALIZE_FILTER_ARN          = var.personalize.filter_arn
      NUM_RESULTS                     = tostring(var.settings.num_results)
      BATCH_BUCKET                    = local.bucket_name
      BATCH_USERS_KEY                 = var.settings.users_key
      BATCH_ROLE_ARN                  = aws_iam_role.personalize.arn
      BATCH_KMS_KEY_ARN               = aws_kms_key.this.arn
      CHUNK_BYTES                     = tostring(var.settings.chunk_bytes)
      SEGMENT_WRITE_KEY_PARAMETER     = var.segment.write_key_parameter.name
      SEGMENT_API_URL                 = var.segment.api_url
      SEGMENT_EVENTS_PER_S            = format("%.3f", local.events_per_s_per_container)
      RECOMMENDED_TRAIT               = var.segment.recommended_trait
      PURCHASED_TRAIT                 = var.segment.purchased_trait
      PROFILE_EXCLUSION               = tostring(var.settings.profile_exclusion)
      SEGMENT_PROFILE_TOKEN_PARAMETER = var.settings.profile_exclusion ? try(var.segment.profile_token_parameter.name, null) : null
      SEGMENT_SPACE_ID                = var.settings.profile_exclusion ? var.segment.space_id : null
      SEGMENT_PROFILE_API_URL         = var.settings.profile_exclusion ? var.segment.profile_api_url : null
      SEGMENT_PROFILE_API_RPS         = var.settings.profile_exclusion && var.segment.profile_api_rps != null ? format("%.3f", var.segment.profile_api_rps) : null
      MAX_RECEIVE_COUNT               = tostring(var.settings.max_receive_count)
    } : name => value if value != null && value != ""
  }, { CHUNK_QUEUE_URL = aws_sqs_queue.chunks.url })

  parameter_arns = compact([
    var.segment.write_key_parameter.arn,
    var.settings.profile_exclusion ? try(var.segment.profile_token_parameter.arn, null) : null,
  ])
  # The jobs this deployment may start: the function names them <name_prefix>-... (DEPLOYMENT_NAME
  # is name_prefix) and refuses any other name.
  batch_job_arn = "arn:${local.partition}:personalize:${local.region}:${local.account_id}:batch-inference-job/${var.deployment.name_prefix}-*"

  # What Personalize needs of a customer key, in the key policy; its role's policy needs all
  # but kms:CreateGrant (granting-personalize-key-access.html, cited on the key policy).
  personalize_key_actions = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"]
}

# -- encryption --------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  description             = "${var.deployment.name_prefix} batch traits: bucket and queues"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  # jsonencode'd here, not an aws_iam_policy_document: in a key policy "*" is this key,
  # which the IAM-document checks would read as every resource.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # Personalize itself (besides the role it assumes) must be allowed to use the key,
        # with these five actions in the key policy (CreateGrant only there): a batch
        # inference job with kmsKeyArn fails without them.
        # https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-key-access.html
        # The role gets the others from its own policy (the account statement above lets
        # IAM policies grant the key; naming the role here would race its creation).
        Sid       = "PersonalizeReadsAndWritesBatchFiles"
        Effect    = "Allow"
        Principal = { Service = "personalize.amazonaws.com" }
        Action    = local.personalize_key_actions
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        # S3 event notifications to an SSE-KMS queue need the key.
        Sid       = "S3NotifiesTheEncryptedQueue"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
  tags = var.deployment.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.deployment.name_prefix}-batch-traits"
  target_key_id = aws_kms_key.this.key_id
}

# -- bucket --------------------------------------------------------------------------------

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logs would need a second bucket per deployment; CloudTrail data events are the account-level choice
  #checkov:skip=CKV_AWS_144:Cross-region replication of transient batch files (expired in days) has no value
  bucket        = local.bucket_name
  force_destroy = var.settings.force_destroy
  tags          = var.deployment.tags
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-input"
    status = "Enabled"
    filter {
      prefix = "input/"
    }
    expiration {
      days = var.settings.files_expiration_days
    }
  }

  rule {
    id     = "expire-output"
    status = "Enabled"
    filter {
      prefix = "output/"
    }
    expiration {
      days = var.settings.files_expiration_days
    }
  }

  rule {
    id     = "expire-state"
    status = "Enabled"
    filter {
      prefix = "state/"
    }
    expiration {
      days = var.settings.files_expiration_days
    }
  }

  rule {
    id     = "expire-reports"
    status = "Enabled"
    filter {
      prefix = "reports/"
    }
    expiration {
      days = var.settings.reports_expiration_days
    }
  }

  # The whole bucket: failed uploads and replaced versions go after a day.
  rule {
    id     = "abort-uploads-and-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Personalize needs a bucket policy for its service principal as well as its role
  # (Personalize developer guide, batch workflow permissions): list the bucket, read input/,
  # write output/, each only for this account.
  dynamic "statement" {
    for_each = {
      PersonalizeListsTheBucket = { actions = ["s3:ListBucket"], resources = [local.bucket_arn] }
      PersonalizeReadsInput     = { actions = ["s3:GetObject"], resources = ["${local.bucket_arn}/input/*"] }
      PersonalizeWritesOutput   = { actions = ["s3:PutObject"], resources = ["${local.bucket_arn}/output/*"] }
    }
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources
      principals {
        type        = "Service"
        identifiers = ["personalize.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket     = aws_s3_bucket.this.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# -- queues --------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.deployment.name_prefix}-batch-chunks-dead-letter"
  message_retention_seconds = 1209600 # 14 days, the maximum: time to look and redrive
  kms_master_key_id         = aws_kms_key.this.arn
  tags                      = var.deployment.tags
}

resource "aws_sqs_queue" "chunks" {
  name = "${var.deployment.name_prefix}-batch-chunks"
  # Longer than the function may run, so a chunk in progress is not delivered twice.
  visibility_timeout_seconds = var.settings.timeout * 6
  message_retention_seconds  = 345600 # 4 days
  kms_master_key_id          = aws_kms_key.this.arn
  tags                       = var.deployment.tags

  lifecycle {
    ignore_changes = [redrive_policy] # owned by aws_sqs_queue_redrive_policy.chunks
  }
}

# Its own resource: the queue-attribute resources compare policies as JSON, not as text.
resource "aws_sqs_queue_redrive_policy" "chunks" {
  queue_url = aws_sqs_queue.chunks.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.settings.max_receive_count
  })
}

data "aws_iam_policy_document" "chunks_queue" {
  statement {
    sid       = "S3SendsOutputNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.chunks.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.this.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "chunks" {
  queue_url = aws_sqs_queue.chunks.id
  policy    = data.aws_iam_policy_document.chunks_queue.json
  # After the redrive policy, not beside it: two SetQueueAttributes on one queue at once can
  # leave the policy's waiter watching for a value the other call replaced, and the test
  # stack's SQS drops the access policy when the redrive policy is set after it (the apply
  # then hung, or the next plan wanted the policy again, in the Terraform e2e test).
  depends_on = [aws_sqs_queue_redrive_policy.chunks]
}

resource "aws_s3_bucket_notification" "this" {
  bucket = aws_s3_bucket.this.id

  queue {
    queue_arn     = aws_sqs_queue.chunks.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "output/"
    filter_suffix = ".out"
  }

  depends_on = [aws_sqs_queue_policy.chunks]
}

# -- the role Personalize assumes for batch inference ------------------------------------

# Only Personalize acting for this account and region may assume it (confused deputy):
# aws:SourceAccount and aws:SourceArn on every Personalize resource of the account here.
# https://docs.aws.amazon.com/personalize/latest/dg/cross-service-confused-deputy-prevention.html
data "aws_iam_policy_document" "personalize_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["personalize.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:personalize:${local.region}:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "personalize" {
  statement {
    sid       = "ListBatchBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  statement {
    sid       = "ReadUsersFiles"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/input/*"]
  }

  statement {
    sid       = "WriteBatchOutput"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/output/*"]
  }

  statement {
    sid       = "UseBatchKey"
    actions   = [for action in local.personalize_key_actions : action if action != "kms:CreateGrant"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "personalize" {
  name                 = local.personalize_role_name
  path                 = var.deployment.iam_role_path
  permissions_boundary = var.deployment.iam_permissions_boundary
  assume_role_policy   = data.aws_iam_policy_document.personalize_trust.json
  tags                 = var.deployment.tags
}

resource "aws_iam_role_policy" "personalize" {
  name   = "batch-files"
  role   = aws_iam_role.personalize.id
  policy = data.aws_iam_policy_document.personalize.json
}

# -- the function --------------------------------------------------------------------------

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "ReadCampaign"
    actions   = ["personalize:DescribeCampaign"]
    resources = [var.personalize.campaign_arn]
  }

  statement {
    sid     = "StartBatchInference"
    actions = ["personalize:CreateBatchInferenceJob"]
    # The job's own ARN (named by the function at start), the solution versions of this
    # account's solutions (the campaign's, read at run time) and the filter.
    resources = compact([
      local.batch_job_arn,
      "arn:${local.partition}:personalize:${local.region}:${local.account_id}:solution/*",
      var.personalize.filter_arn,
    ])
  }

  statement {
    sid       = "PassRoleToPersonalize"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.personalize.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["personalize.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadOutputStateAndReports"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/output/*", "${aws_s3_bucket.this.arn}/state/*", "${aws_s3_bucket.this.arn}/reports/*"]
  }

  statement {
    sid       = "WriteStateAndReports"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/state/*", "${aws_s3_bucket.this.arn}/reports/*"]
  }

  # Unconditional on this bucket (which holds only this module's files): the function reads
  # state objects that may not exist yet, and S3 answers a missing key with 404 only to a
  # caller allowed to list the bucket (403 otherwise). A GetObject carries no s3:prefix, so
  # a prefix condition would turn every first read into AccessDenied.
  # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax
  statement {
    sid       = "ListThisBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  statement {
    sid = "ConsumeAndSendChunks"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:SendMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.chunks.arn]
  }

  # Lambda sends the record of a failed asynchronous invocation (the schedule's start) with
  # the function's execution role: sqs:SendMessage on the on-failure queue (and the key).
  # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
  statement {
    sid       = "RecordFailedStarts"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.start_failures.arn]
  }

  statement {
    sid       = "ReadSegmentCredentials"
    actions   = ["ssm:GetParameter"]
    resources = local.parameter_arns
  }

  statement {
    sid       = "UseBatchKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "DecryptSecretsWithCustomerKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

module "function" {
  source = "../lambda_function"

  function_name        = local.function_name
  description          = "Personalize batch inference output -> Segment identify with recommended items, for every profile."
  zip_path             = var.zip_path
  memory_size          = var.settings.memory_size
  timeout              = var.settings.timeout
  reserved_concurrency = coalesce(var.settings.reserved_concurrency, var.settings.max_concurrency + 1) # the chunk workers and a start call; -1: none
  environment          = local.environment
  policy_json          = data.aws_iam_policy_document.function.json
  role_name            = "${var.deployment.name_prefix}-batch-traits-${local.region}"
  lambda               = var.lambda
  deployment           = var.deployment
}

# The schedule's invocations are asynchronous: a start that fails (the function raises) is
# retried once, then its invocation record goes to the start-failures queue (alarmed).
# https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html
resource "aws_sqs_queue" "start_failures" {
  name                      = "${var.deployment.name_prefix}-batch-start-failures"
  message_retention_seconds = 1209600 # 14 days, the maximum: time to look
  kms_master_key_id         = aws_kms_key.this.arn
  tags                      = var.deployment.tags
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name = module.function.function_name
  # One retry a minute later covers a passing Personalize error; more would risk a second
  # job when a start succeeded but its answer was lost (each retry names a new job).
  maximum_retry_attempts       = 1
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.start_failures.arn
    }
  }

  # Lambda checks the execution role's right to send there when this is set.
  depends_on = [module.function]
}

resource "aws_lambda_event_source_mapping" "chunks" {
  event_source_arn        = aws_sqs_queue.chunks.arn
  function_name           = module.function.function_arn
  batch_size              = var.settings.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.settings.max_concurrency # SQS mappings accept 2..1000 (the root validates it)
  }

  tags = var.deployment.tags
}

# -- the optional schedule -----------------------------------------------------------------

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartBackfill"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.function.function_arn]
  }

  # The schedule's payload is encrypted with this module's key: Scheduler decrypts it with
  # the execution role when it runs the schedule.
  # https://docs.aws.amazon.com/scheduler/latest/UserGuide/encryption-rest.html
  statement {
    sid       = "DecryptTheSchedulePayload"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "scheduler" {
  count                = var.settings.schedule_expression == null ? 0 : 1
  name                 = "${var.deployment.name_prefix}-batch-schedule-${local.region}"
  path                 = var.deployment.iam_role_path
  permissions_boundary = var.deployment.iam_permissions_boundary
  assume_role_policy   = data.aws_iam_policy_document.scheduler_trust.json
  tags                 = var.deployment.tags
}

resource "aws_iam_role_policy" "scheduler" {
  count  = var.settings.schedule_expression == null ? 0 : 1
  name   = "invoke-batch-traits"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "this" {
  count                        = var.settings.schedule_expression == null ? 0 : 1
  name                         = "${var.deployment.name_prefix}-batch-traits"
  description                  = "Refresh the recommended-items trait of every profile (batch inference)."
  schedule_expression          = var.settings.schedule_expression
  schedule_expression_timezone = var.settings.schedule_timezone
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.function.function_arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode({ action = "start" })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }
  }
}

# -- alarms --------------------------------------------------------------------------------

locals {
  # One resource for the module's alarms (as modules/alarms does): each fires on the first
  # occurrence in a 5-minute period, since each means a chunk was not written.
  alarms = {
    batch-chunks-dead-letters = {
      description = "A batch chunk failed ${var.settings.max_receive_count} times and is in the dead-letter queue with its byte range (bundle dlq / backfill report)."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.dead_letter.name }
      statistic   = "Maximum"
    }
    batch-traits-errors = {
      description = "The batch traits function failed (crashes and timeouts; failed chunks are counted in ChunksFailed)."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = module.function.function_name }
      statistic   = "Sum"
    }
    batch-start-failures = {
      description = "A batch start (the schedule's) failed after its retry: its invocation record is in the start-failures queue; no backfill ran."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.start_failures.name }
      statistic   = "Maximum"
    }
    batch-traits-chunks-failed = {
      description = "Chunks failed an attempt (Segment unavailable or throttling past the deadline); SQS retries them."
      namespace   = var.metrics_namespace
      metric      = "ChunksFailed"
      dimensions  = { deployment = var.deployment.name_prefix, service = "batch_traits" }
      statistic   = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.deployment.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = compact([var.alarm_topic_arn])
  ok_actions          = compact([var.alarm_topic_arn])
  tags                = var.deployment.tags
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters
  to   = aws_cloudwatch_metric_alarm.this["batch-chunks-dead-letters"]
}

moved {
  from = aws_cloudwatch_metric_alarm.errors
  to   = aws_cloudwatch_metric_alarm.this["batch-traits-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.chunks_failed
  to   = aws_cloudwatch_metric_alarm.this["batch-traits-chunks-failed"]
}
