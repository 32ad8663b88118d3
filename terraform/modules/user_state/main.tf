# The user-state store: one item per Segment userId (functions/common/userstate.py holds the
# item schema): the purchases the bundle has seen, when the Profile API trait was last
# merged in (seeded), and the last refresh (time, list digest, event-time watermark).
#
# Only the key is declared: DynamoDB is schemaless beyond it, and Terraform wants an
# attribute block for key attributes only (declaring others makes every plan diff).

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:Encrypted with kms_key_arn when given; otherwise DynamoDB's default encryption at rest with an AWS owned key (no KMS charges, no key policy to keep in step).
  name         = "${var.deployment.name_prefix}-user-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "user_id"

  attribute {
    name = "user_id"
    type = "S"
  }

  # Items expire this long after the user's last write (the functions set expires_at to
  # last activity + USER_STATE_TTL_DAYS); DynamoDB deletes them in the background within a
  # few days of that, at no cost, and reads may still see them until then.
  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  # Continuous backups: restore to any second of the last 35 days (a new table).
  point_in_time_recovery {
    enabled = true
  }

  # enabled = false is DynamoDB's AWS owned key, true with a key ARN a customer managed key
  # (true without one would be the AWS managed aws/dynamodb key, with KMS charges).
  # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-dynamodb-table-ssespecification.html
  server_side_encryption {
    enabled     = var.deployment.kms_key_arn != null
    kms_key_arn = var.deployment.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.deployment.tags
}
