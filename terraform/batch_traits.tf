# Opt-in batch backfill / scheduled refresh of the recommended-items trait on every profile
# (issue 15): Personalize batch inference on the campaign, its output written back to
# Segment in parallel byte-range chunks. Variables, wiring and outputs all live in this file.

variable "enable_batch_traits" {
  description = "Deploy the batch write-back (bucket, Personalize batch role, batch_traits function, chunk queue, optional schedule)."
  type        = bool
  default     = false
}

variable "batch_traits" {
  description = "Settings of the batch write-back (see terraform/modules/batch_traits): schedule_expression (EventBridge Scheduler, null = none), chunk_bytes, max_concurrency, segment_events_per_s (split over max_concurrency), num_results, users_key, profile_exclusion, batch_size, max_receive_count, files/reports_expiration_days."
  type = object({
    schedule_expression     = optional(string, null)
    schedule_timezone       = optional(string, "UTC")
    chunk_bytes             = optional(number, 4194304)
    max_concurrency         = optional(number, 5)
    segment_events_per_s    = optional(number, 500)
    num_results             = optional(number, 25)
    users_key               = optional(string, "input/users.json")
    profile_exclusion       = optional(bool, false)
    batch_size              = optional(number, 1)
    max_receive_count       = optional(number, 5)
    files_expiration_days   = optional(number, 14)
    reports_expiration_days = optional(number, 90)
    memory_size             = optional(number, 256)
    timeout                 = optional(number, 300)
    force_destroy           = optional(bool, false)
  })
  default = {}
}

variable "batch_traits_zip_path" {
  description = "Path of the batch_traits function zip; null means build/batch_traits/function.zip."
  type        = string
  default     = null
}

check "batch_traits_profile_exclusion" {
  assert {
    condition     = !(var.enable_batch_traits && var.batch_traits.profile_exclusion && var.segment_space_id == null)
    error_message = "batch_traits.profile_exclusion = true needs segment_space_id (and the profile token)."
  }
}

module "batch_traits" {
  source = "./modules/batch_traits"
  count  = var.enable_batch_traits ? 1 : 0

  name_prefix = var.name_prefix
  settings = {
    for k, v in var.batch_traits : k => v if !contains(["memory_size", "timeout", "force_destroy"], k)
  }
  zip_path           = coalesce(var.batch_traits_zip_path, "${local.build_dir}/batch_traits/function.zip")
  layer_arns         = [aws_lambda_layer_version.dependencies.arn]
  runtime            = var.lambda_runtime
  architecture       = var.lambda_architecture
  memory_size        = var.batch_traits.memory_size
  timeout            = var.batch_traits.timeout
  force_destroy      = var.batch_traits.force_destroy
  tracing_mode       = local.tracing_mode
  log_retention_days = var.log_retention_days

  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary

  personalize_campaign_arn     = var.personalize_campaign_arn
  personalize_filter_arn       = var.personalize_filter_arn
  write_key_parameter_name     = module.segment_secrets.write_key_parameter_name
  write_key_parameter_arn      = module.segment_secrets.write_key_parameter_arn
  profile_token_parameter_name = module.segment_secrets.profile_token_parameter_name
  profile_token_parameter_arn  = module.segment_secrets.profile_token_parameter_arn
  segment_space_id             = var.segment_space_id
  segment_api_url              = local.segment_api_url
  segment_profile_api_url      = local.segment_profile_api_url
  profile_api_rps              = local.profile_api_per_container
  recommended_trait            = var.recommended_trait
  purchased_trait              = var.purchased_trait
  kms_key_arn                  = var.kms_key_arn
  alarm_topic_arn              = module.alarms.sns_topic_arn

  tags = local.tags
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
