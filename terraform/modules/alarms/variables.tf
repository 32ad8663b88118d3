variable "name_prefix" {
  description = "Prefix of every alarm name."
  type        = string
}

variable "function_names" {
  description = "Lambda functions to alarm on when they report errors, keyed by a short label."
  type        = map(string)
}

variable "stream_consumer_function_name" {
  description = "Function reading the Kinesis stream; its IteratorAge says how far behind it is."
  type        = string
}

variable "iterator_age_threshold_seconds" {
  description = "Alarm when the stream consumer is this far behind (seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.iterator_age_threshold_seconds >= 1
    error_message = "iterator_age_threshold_seconds must be >= 1."
  }
}

variable "queue_names" {
  description = "SQS queues that must stay empty (dead-letter and on-failure queues), keyed by a short label."
  type        = map(string)
}

variable "api_name" {
  description = "REST API name (ApiName dimension) to alarm on 5XX responses; null for none."
  type        = string
  default     = null
}

variable "api_stage_name" {
  description = "Stage of the REST API."
  type        = string
  default     = null
}

variable "evaluation_period_seconds" {
  description = "Length of one evaluation period (60 or a multiple of 60)."
  type        = number
  default     = 300

  validation {
    condition     = var.evaluation_period_seconds >= 60 && var.evaluation_period_seconds % 60 == 0
    error_message = "evaluation_period_seconds must be a multiple of 60."
  }
}

variable "sns_topic_arn" {
  description = "Existing SNS topic notified on alarm and recovery; null for none (or create_sns_topic)."
  type        = string
  default     = null
}

variable "create_sns_topic" {
  description = "Create an SNS topic <name_prefix>-alarms and notify it (ignored when sns_topic_arn is set)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
