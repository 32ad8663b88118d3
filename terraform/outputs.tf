output "api_url" {
  description = "Base URL of the recommendations API: GET <api_url>/recommendations?userId=U with header x-api-key."
  value       = module.recommendations.api_url
}

output "api_key" {
  description = "API key for x-api-key (null when api.key_required is false). Read it with `terraform output -raw api_key`."
  value       = module.recommendations.api_key
  sensitive   = true
}

output "kinesis_stream_name" {
  description = "Name of the Kinesis stream Segment writes to."
  value       = module.segment_destination.stream_name
}

output "kinesis_stream_arn" {
  description = "ARN of the Kinesis stream Segment writes to."
  value       = module.segment_destination.stream_arn
}

output "segment_role_arn" {
  description = "ARN of the role Segment's Amazon Kinesis destination assumes."
  value       = module.segment_destination.role_arn
}

output "segment_destination_settings" {
  description = "Paste into Segment's Amazon Kinesis destination: stream = \"AWS Kinesis Stream Name\", region = \"AWS Kinesis Stream Region\", roleAddress = \"Role Address\"."
  value       = module.segment_destination.destination_settings
}

output "dead_letter_queue_url" {
  description = "SQS queue holding Kinesis records that can never succeed (bad data), as JSON with the raw record."
  value       = module.update_traits.dead_letter_queue_url
}

output "user_state_table" {
  description = "The user-state table (DynamoDB): name (USER_STATE_TABLE of both functions) and arn."
  value = {
    name = module.user_state.table_name
    arn  = module.user_state.table_arn
  }
}

output "refresh_queue_url" {
  description = "SQS queue of deferred (trailing) refreshes that update_traits sends itself and consumes; a message failing five times goes to dead_letter_queue_url."
  value       = module.update_traits.refresh_queue_url
}

output "failed_batches_queue_url" {
  description = "SQS on-failure destination: shard and sequence ranges of batches given up after retries or age; replay them from the stream."
  value       = module.update_traits.failed_batches_queue_url
}

output "segment_write_key_parameter" {
  description = "SSM SecureString to hold the Segment write key (set it out of band if segment_write_key was not given)."
  value       = module.segment_secrets.write_key_parameter_name
}

output "segment_profile_token_parameter" {
  description = "SSM SecureString to hold the Profile API token, or null when segment_space_id is not set."
  value       = module.segment_secrets.profile_token_parameter_name
}

output "recommendations_function_name" {
  description = "Name of the recommendations function."
  value       = module.recommendations.function_name
}

output "update_traits_function_name" {
  description = "Name of the update_traits function."
  value       = module.update_traits.function_name
}

output "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify, or null."
  value       = module.alarms.sns_topic_arn
}

output "segment_profile_api_budget" {
  description = "How segment.profile_api_rps is split: per_container is each container's SEGMENT_PROFILE_API_RPS (a whole number when 1 or more); share = per_container x the function's maximum concurrency (update_traits: the stream's and the refresh queue's containers, at most its reserved concurrency; recommendations: 0, it reads the user-state store; batch_traits: its chunk workers with batch_traits.profile_exclusion, else 0); worst_second = the most requests all containers can send in one sliding second."
  value       = local.profile_api_budget
}

output "batch_bucket" {
  description = "Bucket of the batch write-back (input/users.json, output/, state/, reports/), or null when disabled."
  value       = one(module.batch_traits[*].bucket)
}

output "batch_users_key" {
  description = "Key of the documented users file (JSON lines of {\"userId\": ...}), or null when disabled."
  value       = one(module.batch_traits[*].users_key)
}

output "batch_function_name" {
  description = "The batch_traits function (invoke {\"action\": \"start\"} to start a backfill), or null when disabled."
  value       = one(module.batch_traits[*].function_name)
}

output "batch_chunk_queue_url" {
  description = "The chunk queue, or null when disabled."
  value       = one(module.batch_traits[*].chunk_queue_url)
}

output "batch_dead_letter_queue_url" {
  description = "Dead-letter queue of chunks that kept failing (with their byte ranges), or null when disabled."
  value       = one(module.batch_traits[*].dead_letter_queue_url)
}

output "batch_role_arn" {
  description = "The role Personalize assumes for batch inference, or null when disabled."
  value       = one(module.batch_traits[*].personalize_role_arn)
}
