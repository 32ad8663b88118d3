variable "name_prefix" {
  description = "Prefix of every alarm name; also the deployment dimension of the functions' EMF metrics (DEPLOYMENT_NAME)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' EMF metrics (METRICS_NAMESPACE)."
  type        = string
  default     = "SegmentPersonalize"
}

variable "function_names" {
  description = "Lambda functions to alarm on for errors and throttles, keyed by a short label."
  type        = map(string)
}

variable "stream_consumer_function_name" {
  description = "update_traits: reads the Kinesis stream; its IteratorAge and Invocations show a stalled mapping."
  type        = string
}

variable "stream_name" {
  description = "Kinesis stream Segment writes to (IncomingRecords, compared with the consumer's Invocations)."
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

variable "stalled_periods" {
  description = "Consecutive evaluation periods with records arriving and no invocation before the stalled-mapping alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.stalled_periods >= 1 && var.stalled_periods <= 24
    error_message = "stalled_periods must be between 1 and 24."
  }
}

variable "failed_records_periods" {
  description = "Consecutive evaluation periods with records reported for retry before the failed-records alarm fires (a single blip is retried and usually heals)."
  type        = number
  default     = 2

  validation {
    condition     = var.failed_records_periods >= 1 && var.failed_records_periods <= 24
    error_message = "failed_records_periods must be between 1 and 24."
  }
}

variable "queue_names" {
  description = "SQS queues that must stay empty (dead-letter and on-failure queues), keyed by a short label."
  type        = map(string)
}

variable "api_name" {
  description = "REST API name (ApiName dimension) for the API alarms; null for none."
  type        = string
  default     = null
}

variable "api_stage_name" {
  description = "Stage of the REST API."
  type        = string
  default     = null
}

variable "api_4xx_rate_percent" {
  description = "Alarm when more than this share of API requests answer 4XX (bad requests, missing keys, 429 throttling) in a period."
  type        = number
  default     = 10

  validation {
    condition     = var.api_4xx_rate_percent > 0 && var.api_4xx_rate_percent <= 100
    error_message = "api_4xx_rate_percent must be within (0, 100]."
  }
}

variable "api_4xx_min_requests" {
  description = "Requests a period needs before the 4XX rate counts (a handful of bad calls is not an incident)."
  type        = number
  default     = 20

  validation {
    condition     = var.api_4xx_min_requests >= 1
    error_message = "api_4xx_min_requests must be >= 1."
  }
}

variable "api_p99_latency_ms" {
  description = "Alarm when the API's p99 latency (API Gateway Latency) exceeds this many milliseconds for two periods."
  type        = number
  default     = 3000

  validation {
    condition     = var.api_p99_latency_ms >= 1
    error_message = "api_p99_latency_ms must be >= 1."
  }
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
  description = "Existing SNS topic notified on alarm and recovery; null creates <name_prefix>-alarms (create_sns_topic)."
  type        = string
  default     = null
}

variable "create_sns_topic" {
  description = "Create the SNS topic <name_prefix>-alarms and notify it (ignored when sns_topic_arn is set). Off means the alarms notify nobody."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the created topic (AWS sends a confirmation mail first)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the created topic; its key policy must let cloudwatch.amazonaws.com call kms:GenerateDataKey* and kms:Decrypt. Null: SNS-managed encryption is off (alarms cannot publish to aws/sns-encrypted topics)."
  type        = string
  default     = null
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard <name_prefix>-operations."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
