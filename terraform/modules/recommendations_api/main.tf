# GET /recommendations -> recommendations Lambda (proxy integration, payload v1).
# An API key and a usage plan by default; JSON access logs without query strings or bodies;
# execution logs at ERROR without data tracing; stage-wide throttling. With
# cors_allow_origins, OPTIONS /recommendations goes to the same function, which answers the
# browser's CORS preflight itself.

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  name      = "${var.name_prefix}-recommendations"
  region    = data.aws_region.current.name
  path_part = "recommendations"

  cors_enabled = length(var.cors_allow_origins) > 0

  # Optional settings are left out rather than set empty.
  environment = merge(var.extra_environment, {
    for name, value in {
      PERSONALIZE_CAMPAIGN_ARN        = var.personalize_campaign_arn
      PERSONALIZE_FILTER_ARN          = var.personalize_filter_arn
      NUM_RESULTS                     = tostring(var.num_results)
      SEGMENT_PROFILE_TOKEN_PARAMETER = var.profile_token_parameter_name
      SEGMENT_SPACE_ID                = var.segment_space_id
      SEGMENT_PROFILE_API_URL         = var.segment_profile_api_url
      SEGMENT_PROFILE_API_RPS         = var.segment_space_id != null && var.profile_api_rps != null ? format("%.3f", var.profile_api_rps) : null
      PROFILE_WORKERS                 = tostring(var.profile_workers)
      PURCHASE_EVENTS                 = join(",", var.purchase_events)
      PURCHASED_TRAIT                 = var.purchased_trait
      CORS_ALLOW_ORIGIN               = join(",", var.cors_allow_origins)
    } : name => value if value != null && value != ""
  })

  # One JSON object per request. No query string (it holds user ids), no bodies.
  access_log_format = jsonencode({
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    requestTime        = "$context.requestTime"
    ip                 = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    apiKeyId           = "$context.identity.apiKeyId"
    httpMethod         = "$context.httpMethod"
    resourcePath       = "$context.resourcePath"
    status             = "$context.status"
    responseLength     = "$context.responseLength"
    responseLatency    = "$context.responseLatency"
    integrationStatus  = "$context.integration.status"
    integrationLatency = "$context.integration.latency"
    errorType          = "$context.error.responseType"
    wafStatus          = "$context.waf.status"
  })

  # Gateway-generated errors (missing key, throttled, ...) in the API's JSON error shape.
  gateway_error_template = jsonencode({
    error = {
      code    = "$context.error.responseType"
      message = "$context.error.message"
    }
  })
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "GetRecommendations"
    actions   = ["personalize:GetRecommendations"]
    resources = compact([var.personalize_campaign_arn, var.personalize_filter_arn])
  }

  dynamic "statement" {
    for_each = var.profile_token_parameter_name == null ? [] : [1]
    content {
      sid       = "ReadProfileToken"
      actions   = ["ssm:GetParameter"]
      resources = [var.profile_token_parameter_arn]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null || var.profile_token_parameter_name == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptWithCustomerKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # Only to read the profile token SecureString.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

module "function" {
  source = "../lambda_function"

  function_name            = local.name
  description              = "GET /recommendations: Personalize recommendations for a user or an item."
  zip_path                 = var.zip_path
  layer_arns               = var.layer_arns
  runtime                  = var.runtime
  architecture             = var.architecture
  memory_size              = var.memory_size
  timeout                  = var.timeout
  reserved_concurrency     = var.reserved_concurrency
  tracing_mode             = var.tracing_mode
  log_retention_days       = var.log_retention_days
  environment              = local.environment
  policy_json              = data.aws_iam_policy_document.function.json
  deployment_name          = var.name_prefix
  kms_key_arn              = var.kms_key_arn
  role_name                = "${var.name_prefix}-reco-${local.region}"
  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary
  tags                     = var.tags
}

resource "aws_api_gateway_rest_api" "this" {
  name           = local.name
  description    = "Amazon Personalize recommendations for Segment users and items."
  api_key_source = "HEADER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "recommendations" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = local.path_part
}

resource "aws_api_gateway_request_validator" "parameters" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "${local.name}-parameters"
  validate_request_parameters = true
  validate_request_body       = false
}

resource "aws_api_gateway_method" "get" {
  #checkov:skip=CKV2_AWS_70:Callers are partner back ends identified by an API key with a usage plan (api_key_required); no Cognito user pool exists in this design.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = aws_api_gateway_resource.recommendations.id
  http_method          = "GET"
  authorization        = "NONE"
  api_key_required     = var.api_key_required
  request_validator_id = aws_api_gateway_request_validator.parameters.id

  # Declared, not required: either userId or itemId is given; the function validates them.
  request_parameters = {
    "method.request.querystring.userId"     = false
    "method.request.querystring.itemId"     = false
    "method.request.querystring.numResults" = false
  }
}

resource "aws_api_gateway_integration" "lambda" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.recommendations.id
  http_method             = aws_api_gateway_method.get.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = module.function.invoke_arn
  timeout_milliseconds    = 29000
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayGetRecommendations"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's GET /recommendations on this stage may invoke the function.
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/GET/${local.path_part}"
}

# CORS preflight. A browser sends OPTIONS before a cross-origin GET that carries x-api-key,
# and by the Fetch standard a preflight never carries credentials or custom headers: with a
# key required here, every preflight would fail with 403 and the browser would never send
# the GET. The method therefore takes no key; it only reaches the function's preflight
# answer (204 and CORS headers, no data), and the GET that follows still needs its key.
resource "aws_api_gateway_method" "options" {
  count = local.cors_enabled ? 1 : 0

  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = aws_api_gateway_resource.recommendations.id
  http_method      = "OPTIONS"
  authorization    = "NONE"
  api_key_required = false
  # Nothing to validate (no parameters are declared); set so that no method goes unvalidated.
  request_validator_id = aws_api_gateway_request_validator.parameters.id
}

resource "aws_api_gateway_integration" "options" {
  count = local.cors_enabled ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_resource.recommendations.id
  http_method = aws_api_gateway_method.options[0].http_method
  # The function, not a MOCK integration, answers: it echoes only a listed Origin.
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = module.function.invoke_arn
  timeout_milliseconds    = 29000
}

resource "aws_lambda_permission" "options" {
  count = local.cors_enabled ? 1 : 0

  statement_id  = "AllowApiGatewayOptionsRecommendations"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's OPTIONS /recommendations on this stage, like GET above.
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/OPTIONS/${local.path_part}"
}

resource "aws_api_gateway_gateway_response" "default" {
  for_each = toset(["DEFAULT_4XX", "DEFAULT_5XX"])

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key

  response_templates = {
    "application/json" = local.gateway_error_template
  }
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # Redeploy exactly when the routed configuration changes.
  triggers = {
    # Only arguments set here, so a refresh that fills in server defaults changes nothing.
    redeployment = sha1(jsonencode(concat(
      [
        aws_api_gateway_resource.recommendations.id,
        aws_api_gateway_method.get.id,
        aws_api_gateway_method.get.api_key_required,
        aws_api_gateway_method.get.request_parameters,
        aws_api_gateway_method.get.request_validator_id,
        aws_api_gateway_integration.lambda.id,
        aws_api_gateway_integration.lambda.uri,
        aws_api_gateway_integration.lambda.timeout_milliseconds,
        local.gateway_error_template,
      ],
      # The preflight route is appended only when it exists: turning CORS on or off
      # redeploys, and a deployment without CORS keeps the hash it had before.
      [
        for i, method in aws_api_gateway_method.options : [
          method.id,
          method.api_key_required,
          method.authorization,
          method.request_validator_id,
          aws_api_gateway_integration.options[i].id,
          aws_api_gateway_integration.options[i].uri,
          aws_api_gateway_integration.options[i].timeout_milliseconds,
        ]
      ],
    )))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158:Encrypted with kms_key_arn when given; otherwise CloudWatch Logs' own at-rest encryption (AWS-managed keys), which needs no key policy.
  #checkov:skip=CKV_AWS_338:Access logs hold client IP addresses (personal data): kept as long as the function logs (access_log_retention_days, default 30), not a year.
  name              = "/aws/apigateway/${local.name}/access"
  retention_in_days = var.access_log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses are per user and change with every event; a cache cluster costs about $14.60/month and would serve stale recommendations.
  #checkov:skip=CKV2_AWS_51:Client certificates authenticate API Gateway to HTTP back ends; the back end here is Lambda, authenticated by IAM.
  #checkov:skip=CKV2_AWS_29:A WAF is optional (waf_web_acl_arn): the API is keyed and throttled by default; attach a web ACL for a public production API.
  #checkov:skip=CKV2_AWS_77:The optional web ACL (waf_web_acl_arn) is defined outside this configuration; its rule set, including the Log4j managed rules, is its owner's.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = var.tracing_mode == "Active"

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = local.access_log_format
  }

  tags = var.tags

  # Stage logging needs the account's CloudWatch role in place first.
  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Caching is off on purpose, see the stage (CKV_AWS_120).
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled = true
    logging_level   = "ERROR"
    # Full request and response logging would write user ids and recommendations (PII).
    data_trace_enabled     = false
    caching_enabled        = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.waf_web_acl_arn == null ? 0 : 1

  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.waf_web_acl_arn
}

resource "aws_api_gateway_api_key" "this" {
  count = var.api_key_required ? 1 : 0

  name        = local.name
  description = "Key for callers of ${local.name}; send it in x-api-key."
  enabled     = true
  tags        = var.tags
}

resource "aws_api_gateway_usage_plan" "this" {
  count = var.api_key_required ? 1 : 0

  name        = local.name
  description = "Throttling (and the optional quota) for ${local.name} callers."

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = var.throttling_rate_limit
    burst_limit = var.throttling_burst_limit
  }

  # Off by default: a monthly quota runs out at the plan's own rate within hours, and then
  # every call is 429 until the period rolls over. Throttling above protects the back end.
  dynamic "quota_settings" {
    for_each = var.quota_limit == null ? [] : [1]
    content {
      limit  = var.quota_limit
      period = var.quota_period
    }
  }

  tags = var.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  count = var.api_key_required ? 1 : 0

  key_id        = aws_api_gateway_api_key.this[0].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this[0].id
}

# The account-level role API Gateway uses to write stage logs (one per account and region).

data "aws_iam_policy_document" "api_gateway_assume" {
  statement {
    sid     = "ApiGatewayAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name                 = "${var.name_prefix}-apigw-logs-${local.region}"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary
  description          = "Lets API Gateway write execution and access logs in this account and region."
  assume_role_policy   = data.aws_iam_policy_document.api_gateway_assume.json
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role = aws_iam_role.api_gateway_cloudwatch[0].name
  # The account setting serves every REST API in the region, whose log groups API Gateway
  # names and creates itself; AWS's managed policy for exactly this role is the documented one.
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

# One setting per account and region, shared by every REST API there: off by default so
# that this stack neither takes it over nor clears it for others. Turn it on in at most one
# stack per region (or set it once with `aws apigateway update-account`, see the README).
# Destroying this resource leaves the setting as it is (no reset_on_delete).
resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}
