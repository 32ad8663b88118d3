output "sns_topic_arn" {
  description = "Topic notified by the alarms (the given or created one), or null."
  value       = try(local.actions[0], null)
}

output "alarm_names" {
  description = "Names of every alarm created."
  value       = [for a in aws_cloudwatch_metric_alarm.metric : a.alarm_name]
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null."
  value       = one(aws_cloudwatch_dashboard.this[*].dashboard_name)
}
