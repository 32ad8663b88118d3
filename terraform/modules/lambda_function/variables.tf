variable "function_name" {
  description = "Name of the Lambda function; also names its role and log group."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.function_name))
    error_message = "function_name must be 1-56 letters, digits, '-' or '_'."
  }
}

variable "description" {
  description = "Description shown on the Lambda function."
  type        = string
  default     = ""
}

variable "handler" {
  description = "Handler entry point, module.function (every function of this bundle: app.lambda_handler)."
  type        = string
  default     = "app.lambda_handler"
}

variable "zip_path" {
  description = "Path of the function's deployment zip (built by `make package`)."
  type        = string
}

variable "memory_size" {
  description = "Memory in MB; CPU share grows with it (validated by the root's recommendations / update_traits input)."
  type        = number
}

variable "timeout" {
  description = "Function timeout in seconds (validated by the root's recommendations / update_traits input)."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: caps cost and blast radius; -1 removes the reservation."
  type        = number
}

variable "environment" {
  description = "Environment variables. Names of secrets only (SSM parameter names), never their values."
  type        = map(string)
  default     = {}
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the function's own permissions, each statement scoped to exact ARNs. Logs and X-Ray permissions are added here."
  type        = string
  default     = null
}

variable "role_name" {
  description = "Name of the execution role; null means <function_name>-<region> (IAM names are global, the region keeps two regions apart). At most 64 characters."
  type        = string
  default     = null
}

variable "lambda" {
  description = "Settings every function of the deployment shares, built by the root from lambda_runtime, lambda_architecture, tracing_enabled, log_retention_days and the dependency layer (validated there)."
  type = object({
    runtime            = string
    architecture       = string
    layer_arns         = list(string)
    tracing_mode       = string
    log_retention_days = number
  })
}

variable "deployment" {
  description = "What every module of the deployment shares, built by the root from name_prefix, tags, kms_key_arn, iam_role_path and iam_permissions_boundary (validated there). Here: name_prefix (DEPLOYMENT_NAME, the metrics' deployment dimension), tags, the log group's KMS key and the role's path and boundary."
  type = object({
    name_prefix              = string
    tags                     = map(string)
    kms_key_arn              = string
    iam_role_path            = string
    iam_permissions_boundary = string
  })
}
