output "stream_name" {
  description = "Name of the Kinesis stream (Segment setting \"AWS Kinesis Stream Name\")."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "ARN of the Kinesis stream (event source of the traits sync)."
  value       = aws_kinesis_stream.this.arn
}

output "role_arn" {
  description = "ARN of the role Segment assumes (Segment setting \"Role Address\")."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role Segment assumes."
  value       = aws_iam_role.this.name
}

output "destination_settings" {
  description = "Settings of Segment's Amazon Kinesis destination, keyed by Segment's setting ids (stream, region, roleAddress). The Secret ID is read-only in Segment: it goes into external_ids, not the other way round."
  value = {
    stream      = aws_kinesis_stream.this.name
    region      = data.aws_region.current.name
    roleAddress = aws_iam_role.this.arn
  }
}
