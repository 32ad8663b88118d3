output "sns_topic_arn" {
  description = "Topic notified by the alarms (the given or created one), or null."
  value       = try(local.actions[0], null)
}

output "alarm_names" {
  description = "Names of every alarm created."
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.alarm_name],
    [aws_cloudwatch_metric_alarm.iterator_age.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.queue_not_empty : a.alarm_name],
    aws_cloudwatch_metric_alarm.api_5xx[*].alarm_name,
  )
}
