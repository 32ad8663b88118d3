# Alarms renamed when they moved into one definition map (modules/alarms): keep them,
# don't recreate them, on upgrade.

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.function_errors["recommendations"]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["recommendations-errors"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.function_errors["update-traits"]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["update-traits-errors"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.iterator_age
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["stream-iterator-age"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.queue_not_empty["traits-dead-letter"]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["traits-dead-letter-not-empty"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.queue_not_empty["traits-failed-batches"]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["traits-failed-batches-not-empty"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.api_5xx[0]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["api-5xx"]
}
