output "api_url" {
  description = "Base URL of the stage; call GET <api_url>/recommendations?userId=... with x-api-key."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "api_key" {
  description = "Value of the API key (null when api.key_required is false)."
  value       = one(aws_api_gateway_api_key.this[*].value)
  sensitive   = true
}

output "api_key_id" {
  description = "Id of the API key (null when api.key_required is false)."
  value       = one(aws_api_gateway_api_key.this[*].id)
}

output "rest_api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "rest_api_name" {
  description = "Name of the REST API (the ApiName dimension of its metrics)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_api_gateway_stage.this.stage_name
}

output "function_name" {
  description = "Name of the recommendations function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the recommendations function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = module.function.log_group_name
}

output "access_log_group_name" {
  description = "Name of the API access log group."
  value       = aws_cloudwatch_log_group.access.name
}

output "reserved_concurrency" {
  description = "Reserved concurrent executions of the function; -1: none."
  value       = module.function.reserved_concurrency
}

output "stage_logging" {
  description = "What the stage logs: access_logs (JSON access logs to the access log group) and logging_level (execution logs: ERROR, or OFF). Both need the region's API Gateway CloudWatch role."
  value = {
    access_logs   = length(aws_api_gateway_stage.this.access_log_settings) > 0
    logging_level = one(aws_api_gateway_method_settings.all.settings).logging_level
  }
}

output "gateway_responses" {
  description = "The gateway's own error responses (x-amazon-apigateway-gateway-responses of the API document): their templates and, with CORS on, their CORS headers."
  value       = local.body["x-amazon-apigateway-gateway-responses"]
}
