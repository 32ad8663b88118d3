output "bucket" {
  description = "The batch bucket (input/, output/, state/, reports/)."
  value       = aws_s3_bucket.this.id
}

output "users_key" {
  description = "Key of the documented users file the schedule and `backfill start` use."
  value       = var.settings.users_key
}

output "function_name" {
  description = "Name of the batch traits function (invoke it with {\"action\": \"start\"})."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the batch traits function."
  value       = module.function.function_arn
}

output "chunk_queue_url" {
  description = "URL of the chunk queue (S3 notifications and chunk messages)."
  value       = aws_sqs_queue.chunks.url
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue of chunks that kept failing (each message names its byte range)."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_name" {
  description = "Name of that dead-letter queue."
  value       = aws_sqs_queue.dead_letter.name
}

output "start_failures_queue_url" {
  description = "URL of the queue of failed asynchronous starts (the schedule's): each message is Lambda's invocation record, with the error."
  value       = aws_sqs_queue.start_failures.url
}

output "personalize_role_arn" {
  description = "The role Personalize assumes for batch inference."
  value       = aws_iam_role.personalize.arn
}

output "kms_key_arn" {
  description = "The key of the bucket and the queues."
  value       = aws_kms_key.this.arn
}

output "alarm_names" {
  description = "Names of the module's alarms."
  value       = [for alarm in aws_cloudwatch_metric_alarm.this : alarm.alarm_name]
}

output "reserved_concurrency" {
  description = "Reserved concurrent executions of the function; -1: none."
  value       = module.function.reserved_concurrency
}
