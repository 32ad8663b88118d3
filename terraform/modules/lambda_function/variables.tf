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

variable "layer_arns" {
  description = "Versioned ARNs of the layers to attach (at most 5)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.layer_arns) <= 5
    error_message = "Lambda accepts at most 5 layers."
  }
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
  default     = "python3.13"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set of the function: arm64 or x86_64 (the layer must be built for the same)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory in MB (128-10240); CPU share grows with it."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Function timeout in seconds (1-900)."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: caps cost and blast radius. -1 removes the reservation (accounts with a low concurrency quota must keep 100 unreserved)."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1 && floor(var.reserved_concurrency) == var.reserved_concurrency
    error_message = "reserved_concurrency must be -1 or a whole number >= 0."
  }
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

variable "tracing_mode" {
  description = "X-Ray tracing mode: Active (sampled traces) or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days. Function logs may hold user ids (Segment PII): keep it short."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "role_name" {
  description = "Name of the execution role; null means <function_name>-<region> (IAM names are global, the region keeps two regions apart). At most 64 characters."
  type        = string
  default     = null
}

variable "iam_role_path" {
  description = "Path of the execution role (organisations often reserve one for workload roles)."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{0,510}/)?$", var.iam_role_path))
    error_message = "iam_role_path must start and end with '/'."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a managed policy set as the execution role's permissions boundary, or null."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the log group, or null for CloudWatch Logs' default encryption. Its key policy must allow logs.<region>.amazonaws.com to use it."
  type        = string
  default     = null
}

variable "deployment_name" {
  description = "Set as DEPLOYMENT_NAME: the deployment dimension of the function's EMF metrics (alarms match on it). Null leaves it unset."
  type        = string
  default     = null
}
