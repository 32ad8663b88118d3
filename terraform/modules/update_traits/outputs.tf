output "function_name" {
  description = "Name of the update_traits function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the update_traits function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the function's execution role (also used by the event source mapping)."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = module.function.log_group_name
}

output "event_source_mapping_uuid" {
  description = "UUID of the Kinesis event source mapping."
  value       = aws_lambda_event_source_mapping.this.uuid
}

output "dead_letter_queue_url" {
  description = "URL of the queue holding records that can never succeed (written by the function)."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue (for alarms)."
  value       = aws_sqs_queue.dead_letter.name
}

output "failed_batches_queue_url" {
  description = "URL of the on-failure destination: shard and sequence ranges of batches that ran out of retries or age."
  value       = aws_sqs_queue.failed_batches.url
}

output "failed_batches_queue_name" {
  description = "Name of the on-failure queue (for alarms)."
  value       = aws_sqs_queue.failed_batches.name
}

output "reserved_concurrency" {
  description = "Reserved concurrent executions of the function; -1: none."
  value       = module.function.reserved_concurrency
}

output "refresh_queue_url" {
  description = "URL of the refresh queue: deferred (trailing) refreshes the function sends itself, as delayed messages."
  value       = aws_sqs_queue.refresh.url
}

output "refresh_queue_name" {
  description = "Name of the refresh queue (for alarms)."
  value       = aws_sqs_queue.refresh.name
}

output "refresh_event_source_mapping_uuid" {
  description = "UUID of the refresh queue's SQS event source mapping."
  value       = aws_lambda_event_source_mapping.refresh.uuid
}
