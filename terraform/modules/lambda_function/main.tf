# One Lambda function with its own execution role and an explicit log group.
# Everything the function may do is in one policy document: the caller's statements
# (scoped to exact ARNs) plus log writing on this function's log group only.

data "aws_region" "current" {}

locals {
  # IAM is global: the region keeps the same name_prefix in two regions from colliding.
  role_name = coalesce(var.role_name, "${var.function_name}-${data.aws_region.current.name}")
  # DEPLOYMENT_NAME: the deployment dimension of the function's EMF metrics (alarms match on it).
  environment = merge(var.environment, { DEPLOYMENT_NAME = var.deployment.name_prefix })
}

# Lambda writes to /aws/lambda/<function name>; creating that group here sets its retention
# and means the role never needs logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Encrypted with kms_key_arn when given; otherwise CloudWatch Logs' own at-rest encryption (AWS-managed keys), which needs no key policy.
  #checkov:skip=CKV_AWS_338:Function logs may carry Segment user ids (PII); they are kept days, not a year (log_retention_days).
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.lambda.log_retention_days
  kms_key_id        = var.deployment.kms_key_arn
  tags              = var.deployment.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = local.role_name
  path                 = var.deployment.iam_role_path
  permissions_boundary = var.deployment.iam_permissions_boundary
  description          = "Execution role of the ${var.function_name} Lambda function."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  tags                 = var.deployment.tags

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The role name ${local.role_name} is longer than IAM's 64 characters: shorten name_prefix or pass role_name."
    }
  }
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_json == null ? [] : [var.policy_json]

  statement {
    sid     = "WriteOwnLogs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # The group is created by Terraform, so logs:CreateLogGroup is not granted.
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.lambda.tracing_mode == "Active" ? [1] : []
    content {
      sid     = "WriteTraces"
      actions = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      # X-Ray trace ingestion has no resource type: AWS allows only "*" here.
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-permissions"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:A DLQ applies to asynchronous invokes only. recommendations and update_traits are invoked synchronously (API Gateway; the Kinesis mapping, whose failed batches go to its on-failure queue); batch_traits' one asynchronous caller, its schedule, has an on-failure destination queue (aws_lambda_function_event_invoke_config, which supersedes a DLQ and which this check does not read).
  #checkov:skip=CKV_AWS_117:No private resources to reach; a VPC would need a NAT gateway or interface endpoints for every AWS and Segment API called.
  #checkov:skip=CKV_AWS_272:Code signing needs AWS Signer jobs on S3 artifacts; this bundle deploys reproducible local zips whose hash is pinned by source_code_hash.
  #checkov:skip=CKV_AWS_173:Environment variables hold only ARNs, ids and SSM parameter names (no secrets); Lambda encrypts them at rest with an AWS-managed key.
  function_name    = var.function_name
  description      = var.description
  role             = aws_iam_role.this.arn
  handler          = var.handler
  runtime          = var.lambda.runtime
  architectures    = [var.lambda.architecture]
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  layers           = var.lambda.layer_arns
  memory_size      = var.memory_size
  timeout          = var.timeout

  reserved_concurrent_executions = var.reserved_concurrency

  dynamic "environment" {
    for_each = length(local.environment) > 0 ? [1] : []
    content {
      variables = local.environment
    }
  }

  tracing_config {
    mode = var.lambda.tracing_mode
  }

  tags = var.deployment.tags

  # The first invocation must find its log group and the right to write to it.
  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}
