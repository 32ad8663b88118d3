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

# Issue 16: the metric-math and percentile alarms joined the same definition map, so one
# resource (one for_each) holds every alarm.
moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.stream_stalled
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["stream-stalled"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.api_4xx_rate[0]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["api-4xx-rate"]
}

moved {
  from = module.alarms.aws_cloudwatch_metric_alarm.api_latency_p99[0]
  to   = module.alarms.aws_cloudwatch_metric_alarm.metric["api-latency-p99"]
}

# API v2 (issue 14): the REST API is built from openapi.yaml (aws_api_gateway_rest_api.body),
# so the routes, methods, integrations, validator and gateway responses once declared one by
# one now live in that document. `destroy = false`: on upgrade, Terraform forgets them
# without deleting them, so that deleting the old method cannot remove the route the
# document has just put in its place.
removed {
  from = module.recommendations.aws_api_gateway_resource.recommendations
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_method.get
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_integration.lambda
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_method.options
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_integration.options
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_request_validator.parameters
  lifecycle {
    destroy = false
  }
}

removed {
  from = module.recommendations.aws_api_gateway_gateway_response.default
  lifecycle {
    destroy = false
  }
}

# One Lambda permission per deployed route and method (same statement ids as before).
moved {
  from = module.recommendations.aws_lambda_permission.api
  to   = module.recommendations.aws_lambda_permission.route["GET /recommendations"]
}

moved {
  from = module.recommendations.aws_lambda_permission.options[0]
  to   = module.recommendations.aws_lambda_permission.route["OPTIONS /recommendations"]
}

# Issue 16: the modules are named after the function folders they deploy
# (functions/recommendations, functions/update_traits). Terraform applies these first:
# the statements above name resources inside the new module addresses.
moved {
  from = module.recommendations_api
  to   = module.recommendations
}

moved {
  from = module.traits_sync
  to   = module.update_traits
}
