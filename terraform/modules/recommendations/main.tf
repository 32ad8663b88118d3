# The REST API built from openapi.yaml: GET /recommendations, and GET /related-items and
# POST /rankings when their capability is configured, each -> the recommendations Lambda
# (proxy integration, payload v1). An API key and a usage plan by default; stage-wide
# throttling; once the region's API Gateway CloudWatch role is known to be set, JSON access
# logs without query strings or bodies and execution logs at ERROR without data tracing.
# With api.cors_allow_origins, OPTIONS on each route goes to the same function, which
# answers the browser's CORS preflight itself, and the gateway's own errors carry the
# CORS headers.

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  name   = "${var.deployment.name_prefix}-recommendations"
  region = data.aws_region.current.name

  cors_enabled = length(var.api.cors_allow_origins) > 0

  # Stage logs (access logs and execution logging) need the region's API Gateway CloudWatch
  # role, the account setting cloudWatchRoleArn: "To enable CloudWatch Logs, you must grant
  # API Gateway permission to read and write logs to CloudWatch for your account" (an IAM
  # role set as cloudWatchRoleArn, once per region),
  # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html.
  # Without it CreateStage/UpdateStage answer "CloudWatch Logs role ARN must be set in
  # account settings to enable logging", as on every fresh account. Terraform cannot read
  # that setting (no data source), so the stage logs only when it is known to be set:
  # api.stage_logging = true, or this stack sets it (manage_api_gateway_account).
  stage_logging = coalesce(var.api.stage_logging, var.api.manage_api_gateway_account)

  # The gateway's own errors (403 missing or wrong key, 429 throttled or over quota, 400
  # invalid body, 504 integration timeout, ...) never reach the function, so they carry
  # no CORS headers unless their gateway responses add them; without them a browser hides
  # the status from the page. A customised response type does not inherit DEFAULT_4XX
  # ("If the response type is unspecified, this response defaults to the DEFAULT_4XX
  # type", https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html),
  # so every one defined below gets them. Values are static ('...') or taken from the
  # request (method.request.header.<name>),
  # https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.responseParameters.html.
  # A gateway response cannot choose among several origins as the function does: with
  # more than one it echoes the request's Origin. These bodies hold only the error's code
  # and message, and no Access-Control-Allow-Credentials is sent.
  cors_any_origin = contains(var.api.cors_allow_origins, "*")
  gateway_cors_headers = !local.cors_enabled ? {} : local.cors_any_origin ? {
    "gatewayresponse.header.Access-Control-Allow-Origin" = "'*'"
    } : {
    "gatewayresponse.header.Access-Control-Allow-Origin" = length(var.api.cors_allow_origins) == 1 ? "'${var.api.cors_allow_origins[0]}'" : "method.request.header.Origin"
    "gatewayresponse.header.Vary"                        = "'Origin'"
  }
  gateway_cors = local.cors_enabled ? { responseParameters = local.gateway_cors_headers } : {}

  # The API document, and the routes whose capability is configured: no other is deployed.
  openapi = yamldecode(file("${path.module}/openapi.yaml"))
  routes = concat(
    ["/recommendations"],
    var.settings.related_items_arn == null ? [] : ["/related-items"],
    var.settings.ranking_campaign_arn == null ? [] : ["/rankings"],
  )
  integration = {
    type                = "aws_proxy"
    httpMethod          = "POST"
    uri                 = module.function.invoke_arn
    timeoutInMillis     = 29000
    passthroughBehavior = "when_no_match"
  }
  security = var.api.key_required ? [{ api_key = [] }] : []
  # CORS preflight. A browser sends OPTIONS before a cross-origin call that carries
  # x-api-key, and by the Fetch standard a preflight never carries credentials or custom
  # headers: with a key required there, every preflight would fail with 403 and the browser
  # would never send the call. So no key here; the function answers (204 and CORS headers,
  # no data; it echoes only a listed Origin), and the call that follows still needs its key.
  preflight = {
    summary                           = "CORS preflight, answered by the function (no API key: browsers send none)."
    security                          = []
    responses                         = { "204" = { description = "CORS headers, no body." } }
    "x-amazon-apigateway-integration" = local.integration
  }
  paths = {
    for path, operations in local.openapi.paths : path => merge(
      {
        for verb, operation in operations : verb => merge(operation, {
          security                                = local.security
          "x-amazon-apigateway-request-validator" = "parameters-and-body"
          "x-amazon-apigateway-integration"       = local.integration
        })
      },
      { for verb, operation in { options = local.preflight } : verb => operation if local.cors_enabled },
    ) if contains(local.routes, path)
  }
  body = merge(local.openapi, {
    paths                                = local.paths
    "x-amazon-apigateway-api-key-source" = "HEADER"
    "x-amazon-apigateway-request-validators" = {
      parameters-and-body = { validateRequestParameters = true, validateRequestBody = true }
    }
    # Gateway-generated errors (missing key, throttled, bad body, ...) in the API's JSON
    # error shape; a body that fails the document's schema names what is wrong.
    # With CORS on, each carries the CORS headers (local.gateway_cors above).
    "x-amazon-apigateway-gateway-responses" = {
      DEFAULT_4XX      = merge({ responseTemplates = { "application/json" = local.gateway_error_template } }, local.gateway_cors)
      DEFAULT_5XX      = merge({ responseTemplates = { "application/json" = local.gateway_error_template } }, local.gateway_cors)
      BAD_REQUEST_BODY = merge({ responseTemplates = { "application/json" = local.bad_body_template } }, local.gateway_cors)
    }
  })
  route_methods = merge([
    for path, operations in local.paths : {
      for verb, _ in operations : "${upper(verb)} ${path}" => {
        verb      = upper(verb)
        path      = path
        verb_name = title(lower(verb))
        path_name = replace(title(replace(trimprefix(path, "/"), "-", " ")), " ", "")
      }
    }
  ]...)

  filters = {
    for name, arn in var.settings.filters : name => {
      arn        = arn
      parameters = lookup(var.settings.filter_parameters, name, [])
    }
  }
  promotions = [
    for p in var.settings.promotions : {
      name                 = p.name
      percentPromotedItems = p.percent_promoted_items
      filter               = p.filter
      filterValues         = p.filter_values
    }
  ]

  # Optional settings are left out rather than set empty.
  profiles = var.profiles == null ? {} : {
    SEGMENT_PROFILE_TOKEN_PARAMETER = var.profiles.token_parameter.name
    SEGMENT_SPACE_ID                = var.profiles.space_id
    SEGMENT_PROFILE_API_URL         = var.profiles.api_url
    SEGMENT_PROFILE_API_RPS         = var.profiles.api_rps == null ? null : format("%.3f", var.profiles.api_rps)
    PURCHASED_TRAIT                 = var.profiles.purchased_trait
  }
  # The user-state store (issue 20): purchases to exclude come from it, not the Profile API.
  user_state = var.user_state == null ? {} : {
    USER_STATE_TABLE = var.user_state.table_name
  }
  environment = merge(var.settings.extra_environment, {
    for name, value in merge(local.profiles, local.user_state, {
      PERSONALIZE_CAMPAIGN_ARN = var.personalize.campaign_arn
      PERSONALIZE_FILTER_ARN   = var.personalize.filter_arn
      NUM_RESULTS              = tostring(var.personalize.num_results)
      PROFILE_WORKERS          = tostring(var.settings.profile_workers)
      CORS_ALLOW_ORIGIN        = join(",", var.api.cors_allow_origins)
      # One setting per capability; a route without one is not deployed.
      PERSONALIZE_RELATED_ITEMS_ARN    = var.settings.related_items_arn
      PERSONALIZE_RANKING_CAMPAIGN_ARN = var.settings.ranking_campaign_arn
      PERSONALIZE_FILTERS              = length(local.filters) > 0 ? jsonencode(local.filters) : null
      PERSONALIZE_PROMOTIONS           = length(local.promotions) > 0 ? jsonencode(local.promotions) : null
      ITEM_METADATA_COLUMNS            = join(",", var.settings.item_metadata_columns)
      CACHE_MAX_AGE_S                  = var.settings.cache_max_age_seconds > 0 ? tostring(var.settings.cache_max_age_seconds) : null
      LOG_HASH_KEY_PARAMETER           = try(var.log_hash_key_parameter.name, null)
    }) : name => value if value != null && value != ""
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
  bad_body_template = jsonencode({
    error = {
      code    = "invalid_body"
      message = "$context.error.validationErrorString"
    }
  })
}

data "aws_iam_policy_document" "function" {
  statement {
    sid     = "GetRecommendations"
    actions = ["personalize:GetRecommendations"]
    resources = distinct(compact(concat(
      [var.personalize.campaign_arn, var.settings.related_items_arn, var.personalize.filter_arn],
      values(var.settings.filters),
    )))
  }

  dynamic "statement" {
    for_each = var.settings.ranking_campaign_arn == null ? [] : [var.settings.ranking_campaign_arn]
    content {
      sid       = "GetPersonalizedRanking"
      actions   = ["personalize:GetPersonalizedRanking"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.profiles == null ? [] : [var.profiles.token_parameter.arn]
    content {
      sid       = "ReadProfileToken"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.log_hash_key_parameter == null ? [] : [var.log_hash_key_parameter.arn]
    content {
      sid       = "ReadLogHashKey"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null || (var.profiles == null && var.log_hash_key_parameter == null) ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "DecryptWithCustomerKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # Only to read the SecureStrings (profile token, log pseudonym key).
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }
    }
  }

  # The user-state store (issue 20): one item per request, from this table only.
  dynamic "statement" {
    for_each = var.user_state == null ? [] : [var.user_state.table_arn]
    content {
      sid       = "ReadUserState"
      actions   = ["dynamodb:GetItem"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.deployment.kms_key_arn == null || var.user_state == null ? [] : [var.deployment.kms_key_arn]
    content {
      sid       = "ReadUserStateWithCustomerKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # DynamoDB decrypts the table key with the caller's permissions, through DynamoDB only.
      # https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${local.region}.amazonaws.com"]
      }
    }
  }
}

module "function" {
  source = "../lambda_function"

  function_name        = local.name
  description          = "GET /recommendations: Personalize recommendations for a user or an item."
  zip_path             = var.zip_path
  memory_size          = var.settings.memory_size
  timeout              = var.settings.timeout
  reserved_concurrency = var.settings.reserved_concurrency
  environment          = local.environment
  policy_json          = data.aws_iam_policy_document.function.json
  role_name            = "${var.deployment.name_prefix}-reco-${local.region}"
  lambda               = var.lambda
  deployment           = var.deployment
}

resource "aws_api_gateway_rest_api" "this" {
  name           = local.name
  description    = "Amazon Personalize recommendations for Segment users and items."
  api_key_source = "HEADER"
  # The routes, their request validation and API-key requirement, the Lambda proxy
  # integration and the gateway's error answers all come from openapi.yaml (plus the
  # integration added per operation above): the deployed API cannot drift from it.
  body              = jsonencode(local.body)
  put_rest_api_mode = "overwrite"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.deployment.tags

  lifecycle {
    create_before_destroy = true
  }
}

# One permission per deployed route and method: only this API's stage may invoke the
# function, and only on the routes it serves.
resource "aws_lambda_permission" "route" {
  for_each = local.route_methods

  statement_id  = "AllowApiGateway${each.value.verb_name}${each.value.path_name}"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.api.stage_name}/${each.value.verb}${each.value.path}"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # Redeploy exactly when the document Terraform sent changes (routes, validation, keys,
  # integration, gateway responses).
  triggers = {
    redeployment = sha1(aws_api_gateway_rest_api.this.body)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158:Encrypted with kms_key_arn when given; otherwise CloudWatch Logs' own at-rest encryption (AWS-managed keys), which needs no key policy.
  #checkov:skip=CKV_AWS_338:Access logs hold client IP addresses (personal data): kept as long as the function logs (api.access_log_retention_days, default 30), not a year.
  name              = "/aws/apigateway/${local.name}/access"
  retention_in_days = var.api.access_log_retention_days
  kms_key_id        = var.deployment.kms_key_arn
  tags              = var.deployment.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_76:Access logs are on once the region's API Gateway CloudWatch role is known to be set (api.stage_logging, or manage_api_gateway_account); API Gateway refuses them without it, as on a fresh account.
  #checkov:skip=CKV_AWS_120:Responses are per user and change with every event; a cache cluster costs about $14.60/month and would serve stale recommendations.
  #checkov:skip=CKV2_AWS_51:Client certificates authenticate API Gateway to HTTP back ends; the back end here is Lambda, authenticated by IAM.
  #checkov:skip=CKV2_AWS_29:A WAF is optional (api.waf_web_acl_arn): the API is keyed and throttled by default; attach a web ACL for a public production API.
  #checkov:skip=CKV2_AWS_77:The optional web ACL (api.waf_web_acl_arn) is defined outside this configuration; its rule set, including the Log4j managed rules, is its owner's.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.api.stage_name
  xray_tracing_enabled = var.lambda.tracing_mode == "Active"

  # Only once the account's CloudWatch role is known to be set (local.stage_logging).
  dynamic "access_log_settings" {
    for_each = local.stage_logging ? [1] : []
    content {
      destination_arn = aws_cloudwatch_log_group.access.arn
      format          = local.access_log_format
    }
  }

  tags = var.deployment.tags

  # Stage logging needs the account's CloudWatch role in place first (when set here).
  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Caching is off on purpose, see the stage (CKV_AWS_120).
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    # Detailed metrics are CloudWatch metrics, not CloudWatch Logs, which is what AWS
    # documents the account role for (set-up-logging.html, above).
    metrics_enabled = true
    # Execution logs need the account's CloudWatch role (local.stage_logging).
    logging_level = local.stage_logging ? "ERROR" : "OFF"
    # Full request and response logging would write user ids and recommendations (PII).
    data_trace_enabled     = false
    caching_enabled        = false
    throttling_rate_limit  = var.api.throttling_rate_limit
    throttling_burst_limit = var.api.throttling_burst_limit
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.api.waf_web_acl_arn == null ? 0 : 1

  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.api.waf_web_acl_arn
}

resource "aws_api_gateway_api_key" "this" {
  count = var.api.key_required ? 1 : 0

  name        = local.name
  description = "Key for callers of ${local.name}; send it in x-api-key."
  enabled     = true
  tags        = var.deployment.tags
}

resource "aws_api_gateway_usage_plan" "this" {
  count = var.api.key_required ? 1 : 0

  name        = local.name
  description = "Throttling (and the optional quota) for ${local.name} callers."

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = var.api.throttling_rate_limit
    burst_limit = var.api.throttling_burst_limit
  }

  # Off by default: a monthly quota runs out at the plan's own rate within hours, and then
  # every call is 429 until the period rolls over. Throttling above protects the back end.
  dynamic "quota_settings" {
    for_each = var.api.quota_limit == null ? [] : [1]
    content {
      limit  = var.api.quota_limit
      period = var.api.quota_period
    }
  }

  tags = var.deployment.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  count = var.api.key_required ? 1 : 0

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
  count = var.api.manage_api_gateway_account ? 1 : 0

  name                 = "${var.deployment.name_prefix}-apigw-logs-${local.region}"
  path                 = var.deployment.iam_role_path
  permissions_boundary = var.deployment.iam_permissions_boundary
  description          = "Lets API Gateway write execution and access logs in this account and region."
  assume_role_policy   = data.aws_iam_policy_document.api_gateway_assume.json
  tags                 = var.deployment.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.api.manage_api_gateway_account ? 1 : 0

  role = aws_iam_role.api_gateway_cloudwatch[0].name
  # The account setting serves every REST API in the region, whose log groups API Gateway
  # names and creates itself; AWS's managed policy for exactly this role is the documented one.
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

# One setting per account and region, shared by every REST API there: off by default so
# that this stack neither takes it over nor clears it for others. Turn it on in at most one
# stack per region (or set it once with `aws apigateway update-account`, see terraform/README.md).
# Destroying this resource leaves the setting as it is (no reset_on_delete).
resource "aws_api_gateway_account" "this" {
  count = var.api.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}
