# modules/batch_traits on the mocked AWS provider (apply: the mocks give every computed
# attribute a value, so the wiring between resources can be compared): what real AWS asks
# of the batch write-back and an emulator would not check. Personalize's use of the KMS key
# and its role's trust (granting-personalize-key-access.html, cross-service-confused-deputy-
# prevention.html); the schedule's asynchronous start failing into a queue that is alarmed,
# with the right for the function's role to send there (invocation-async-retain-records.html).

mock_provider "aws" {
  source = "./tests/mocks"

  # ARNs the provider validates when the mocked resources are applied.
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-1:123456789012:mocked" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/mocked" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:mocked" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mocked" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:mocked" }
  }
}

variables {
  deployment = { name_prefix = "shop", tags = {}, kms_key_arn = null, iam_role_path = "/", iam_permissions_boundary = null }
  lambda     = { runtime = "python3.13", architecture = "arm64", layer_arns = [], tracing_mode = "PassThrough", log_retention_days = 30 }
  zip_path   = "tests/fixtures/function.zip"
  settings = {
    schedule_expression     = "cron(0 3 ? * SUN *)"
    schedule_timezone       = "UTC"
    chunk_bytes             = 4194304
    max_concurrency         = 5
    reserved_concurrency    = null
    segment_events_per_s    = 500
    num_results             = 25
    users_key               = "input/users.json"
    profile_exclusion       = false
    batch_size              = 1
    max_receive_count       = 5
    files_expiration_days   = 14
    reports_expiration_days = 90
    memory_size             = 256
    timeout                 = 300
    extra_environment       = {}
    force_destroy           = false
  }
  personalize = {
    campaign_arn = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
    filter_arn   = null
  }
  segment = {
    space_id                = null
    api_url                 = "https://api.segment.io/v1"
    profile_api_url         = "https://profiles.segment.com/v1"
    profile_api_rps         = null
    recommended_trait       = "recommended_products"
    purchased_trait         = "purchased_products"
    write_key_parameter     = { name = "/shop/segment/write-key", arn = "arn:aws:ssm:us-east-1:123456789012:parameter/shop/segment/write-key" }
    profile_token_parameter = null
  }
  alarm_topic_arn = "arn:aws:sns:us-east-1:123456789012:shop-alarms"
}

run "personalize_may_use_the_key_and_only_this_accounts_personalize_may_assume_its_role" {
  command = apply

  module {
    source = "./modules/batch_traits"
  }

  assert {
    condition = toset(one([
      for statement in jsondecode(aws_kms_key.this.policy).Statement : statement.Action
      if statement.Sid == "PersonalizeReadsAndWritesBatchFiles"
    ])) == toset(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"])
    error_message = "The key policy must allow Personalize kms:Decrypt, GenerateDataKey, DescribeKey, CreateGrant and ListGrants."
  }
  assert {
    condition = toset(one([
      for statement in data.aws_iam_policy_document.personalize.statement : statement.actions
      if statement.sid == "UseBatchKey"
    ])) == toset(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"])
    error_message = "The Personalize role's policy must allow the key's Decrypt, GenerateDataKey, DescribeKey and ListGrants (CreateGrant is the key policy's)."
  }
  assert {
    condition = one([
      for statement in data.aws_iam_policy_document.personalize.statement : statement.resources
      if statement.sid == "UseBatchKey"
    ]) == toset([aws_kms_key.this.arn])
    error_message = "The Personalize role may use the module's key only."
  }
  assert {
    condition = toset([
      for condition in data.aws_iam_policy_document.personalize_trust.statement[0].condition :
      "${condition.test} ${condition.variable} ${join(",", condition.values)}"
      ]) == toset([
      "StringEquals aws:SourceAccount 123456789012",
      "ArnLike aws:SourceArn arn:aws:personalize:us-east-1:123456789012:*",
    ])
    error_message = "The Personalize role's trust must carry aws:SourceAccount and aws:SourceArn (ArnLike arn:aws:personalize:<region>:<account>:*)."
  }
}

run "a_failed_scheduled_start_is_retried_then_queued_and_alarmed" {
  command = apply

  module {
    source = "./modules/batch_traits"
  }

  # Queues told apart, so that "this queue" cannot be any queue of the module.
  override_resource {
    target = aws_sqs_queue.start_failures
    values = { arn = "arn:aws:sqs:us-east-1:123456789012:shop-batch-start-failures", name = "shop-batch-start-failures" }
  }
  override_resource {
    target = aws_sqs_queue.dead_letter
    values = { arn = "arn:aws:sqs:us-east-1:123456789012:shop-batch-chunks-dead-letter", name = "shop-batch-chunks-dead-letter" }
  }
  override_resource {
    target = aws_sqs_queue.chunks
    values = { arn = "arn:aws:sqs:us-east-1:123456789012:shop-batch-chunks", name = "shop-batch-chunks" }
  }

  assert {
    condition     = aws_lambda_function_event_invoke_config.this.function_name == module.function.function_name
    error_message = "The batch function's asynchronous invocations must be configured."
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.this.maximum_retry_attempts == 1 && aws_lambda_function_event_invoke_config.this.maximum_event_age_in_seconds == 3600
    error_message = "A failed start is retried once, within an hour."
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.this.destination_config[0].on_failure[0].destination == aws_sqs_queue.start_failures.arn
    error_message = "A start that still fails must go to the start-failures queue."
  }
  assert {
    condition     = aws_sqs_queue.start_failures.kms_master_key_id == aws_kms_key.this.arn
    error_message = "The start-failures queue is encrypted with the module's key."
  }
  assert {
    condition = one([
      for statement in data.aws_iam_policy_document.function.statement : statement
      if statement.sid == "RecordFailedStarts"
    ]).actions == toset(["sqs:SendMessage"])
    error_message = "The function's role (which Lambda sends the invocation record with) must be allowed sqs:SendMessage."
  }
  assert {
    condition = one([
      for statement in data.aws_iam_policy_document.function.statement : statement
      if statement.sid == "RecordFailedStarts"
    ]).resources == toset([aws_sqs_queue.start_failures.arn])
    error_message = "sqs:SendMessage on the start-failures queue only."
  }
  assert {
    condition     = one([for s in data.aws_iam_policy_document.function.statement : s.actions if s.sid == "UseBatchKey"]) == toset(["kms:Decrypt", "kms:GenerateDataKey"])
    error_message = "Sending to the encrypted queue needs the key's GenerateDataKey and Decrypt."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.this["batch-start-failures"].dimensions.QueueName == aws_sqs_queue.start_failures.name && aws_cloudwatch_metric_alarm.this["batch-start-failures"].metric_name == "ApproximateNumberOfMessagesVisible"
    error_message = "The start-failures queue's visible messages must be alarmed."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.this["batch-start-failures"].threshold == 0 && aws_cloudwatch_metric_alarm.this["batch-start-failures"].alarm_actions == toset([var.alarm_topic_arn])
    error_message = "The alarm fires on the first message and notifies the alarm topic."
  }
}
