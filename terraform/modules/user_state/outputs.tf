output "table_name" {
  description = "Name of the user-state table (the functions' USER_STATE_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the user-state table: the only resource the functions' dynamodb: statements name."
  value       = aws_dynamodb_table.this.arn
}
