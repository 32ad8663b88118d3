# The stream Segment's Amazon Kinesis destination writes to, and the role Segment assumes.
# Trust: only Segment's customer-kinesis-access role, and only with one of our external ids.

data "aws_region" "current" {}

resource "aws_kinesis_stream" "this" {
  name             = "${var.deployment.name_prefix}-segment-events"
  shard_count      = var.stream.stream_mode == "PROVISIONED" ? var.stream.shard_count : null
  retention_period = var.stream.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = coalesce(var.deployment.kms_key_arn, "alias/aws/kinesis")

  stream_mode_details {
    stream_mode = var.stream.stream_mode
  }

  tags = var.deployment.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "SegmentAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.segment_principal_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = var.external_ids
    }
  }
}

resource "aws_iam_role" "this" {
  # IAM is global: the region keeps the same name_prefix in two regions from colliding.
  name                 = "${var.deployment.name_prefix}-segment-${data.aws_region.current.name}"
  path                 = var.deployment.iam_role_path
  permissions_boundary = var.deployment.iam_permissions_boundary
  description          = "Assumed by Segment's Amazon Kinesis destination to write events to ${aws_kinesis_stream.this.name}."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  tags                 = var.deployment.tags
}

data "aws_iam_policy_document" "write" {
  statement {
    sid = "PutSegmentEvents"
    # Segment batches with PutRecords; PutRecord alone degrades delivery (Segment docs).
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.this.arn]
  }

  statement {
    sid = "CheckOwnPermissions"
    # Segment simulates this role's policy to validate the setup before sending.
    actions   = ["iam:SimulatePrincipalPolicy"]
    resources = [aws_iam_role.this.arn]
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "EncryptWithCustomerKey"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]
      # Only for writes to Kinesis, not to encrypt anything else with our key.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["kinesis.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "write" {
  name   = "${var.deployment.name_prefix}-segment-kinesis-write"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.write.json
}
