output "write_key_parameter_name" {
  description = "Name of the SecureString holding the Segment write key (SEGMENT_WRITE_KEY_PARAMETER)."
  value       = aws_ssm_parameter.write_key.name
}

output "write_key_parameter_arn" {
  description = "ARN of the write key parameter, for ssm:GetParameter grants."
  value       = aws_ssm_parameter.write_key.arn
}

output "profile_token_parameter_name" {
  description = "Name of the SecureString holding the Profile API token (SEGMENT_PROFILE_TOKEN_PARAMETER), or null when not created."
  value       = one(aws_ssm_parameter.profile_token[*].name)
}

output "profile_token_parameter_arn" {
  description = "ARN of the profile token parameter, or null when not created."
  value       = one(aws_ssm_parameter.profile_token[*].arn)
}

output "log_hash_key_parameter_name" {
  description = "Name of the SecureString keying the user-id pseudonyms in the logs (LOG_HASH_KEY_PARAMETER)."
  value       = aws_ssm_parameter.log_hash_key.name
}

output "log_hash_key_parameter_arn" {
  description = "ARN of the log pseudonym key parameter, for ssm:GetParameter grants."
  value       = aws_ssm_parameter.log_hash_key.arn
}
