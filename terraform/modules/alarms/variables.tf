variable "deployment" {
  description = "What every module of the deployment shares (name_prefix, tags, kms_key_arn, iam_role_path, iam_permissions_boundary), built and validated by the root. name_prefix prefixes every alarm name and is the deployment dimension of the functions' EMF metrics (DEPLOYMENT_NAME); a customer key encrypts the created topic, and its key policy must let cloudwatch.amazonaws.com call kms:GenerateDataKey* and kms:Decrypt."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}

variable "settings" {
  description = "The root's alarms input with its defaults applied: topic, e-mail, thresholds, periods, dashboard. Each attribute is described and validated there (terraform/README.md)."
  type = object({
    sns_topic_arn          = string
    create_sns_topic       = bool
    email                  = string
    api_4xx_percent        = number
    api_4xx_min_requests   = number
    api_p99_latency_ms     = number
    iterator_age_seconds   = number
    stalled_periods        = number
    failed_records_periods = number
    period_seconds         = number
    create_dashboard       = bool
  })
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

variable "user_state" {
  description = "The user-state store's alarms: table_name (DynamoDB throttles and system errors on the operations the functions call), refresh_queue_name and refresh_interval_seconds (the oldest trailing refresh may be that much plus settings.iterator_age_seconds old). Null: none."
  type = object({
    table_name               = string
    refresh_queue_name       = string
    refresh_interval_seconds = number
  })
  default = null
}
