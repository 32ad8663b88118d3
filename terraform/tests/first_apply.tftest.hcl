# A first `terraform apply` on a fresh account (issue 21): what the default plan asks of
# AWS must be what a new account grants. Offline (mocked AWS provider), plan unless noted.
#
# - API Gateway refuses stage access logs and execution logging (logging_level) while the
#   region's CloudWatch role (the account's cloudWatchRoleArn) is unset, as it is on a
#   fresh account: by default the stage asks for neither, and says so.
# - Lambda refuses a reservation that leaves fewer than 100 unreserved executions; a new
#   account's quota can be far below 100 + 50 + 20: every reservation can be turned off.
# - A new kms_key_arn must not make Terraform rewrite the write-only secrets.
# - The gateway's own errors (403, 429, 400, 504) carry the CORS headers when CORS is on.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  personalize_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:campaign/c"
  segment_external_ids     = ["ws_test"]
  artifacts = {
    recommendations = "tests/fixtures/function.zip"
    update_traits   = "tests/fixtures/function.zip"
    layer           = "tests/fixtures/function.zip"
    batch_traits    = "tests/fixtures/function.zip"
  }
  # Decided (off): the plan does not warn that the stage logs nothing (check.api_stage_logging).
  api = { stage_logging = false }
}

# ---- Stage logging and the account's CloudWatch role -------------------------------------

run "the_default_stage_logs_nothing_that_needs_the_account_role" {
  command = plan

  variables {
    api = {} # every default
  }

  assert {
    condition     = module.recommendations.stage_logging.access_logs == false
    error_message = "By default the stage must not ask for access logs: API Gateway refuses them without the region's CloudWatch role."
  }
  assert {
    condition     = module.recommendations.stage_logging.logging_level == "OFF"
    error_message = "By default execution logging must be OFF: API Gateway refuses ERROR or INFO without the region's CloudWatch role."
  }

  # The plan says so, with the remedy (a warning: the apply goes on).
  expect_failures = [check.api_stage_logging]
}

run "the_stage_logs_when_the_account_role_is_known_to_be_set" {
  command = plan

  variables {
    api = { stage_logging = true }
  }

  assert {
    condition     = module.recommendations.stage_logging.access_logs && module.recommendations.stage_logging.logging_level == "ERROR"
    error_message = "api.stage_logging = true: JSON access logs and execution logs at ERROR."
  }
}

run "the_stage_logs_when_this_stack_sets_the_account_role" {
  command = plan

  variables {
    api = { manage_api_gateway_account = true }
  }

  assert {
    condition     = module.recommendations.stage_logging.access_logs && module.recommendations.stage_logging.logging_level == "ERROR"
    error_message = "api.manage_api_gateway_account = true sets the role first: the stage logs."
  }
}

run "stage_logging_can_be_turned_off_even_with_the_account_role" {
  command = plan

  variables {
    api = { manage_api_gateway_account = true, stage_logging = false }
  }

  assert {
    condition     = !module.recommendations.stage_logging.access_logs && module.recommendations.stage_logging.logging_level == "OFF"
    error_message = "api.stage_logging = false wins over the managed role."
  }
}

# ---- Reserved concurrency ---------------------------------------------------------------

run "default_reservations" {
  command = plan

  variables {
    enable_batch_traits = true
  }

  assert {
    condition     = module.recommendations.reserved_concurrency == 50 && module.update_traits.reserved_concurrency == 20
    error_message = "Defaults: 50 for the API, 20 for update_traits."
  }
  assert {
    condition     = module.batch_traits[0].reserved_concurrency == 6
    error_message = "Default batch reservation: batch_traits.max_concurrency (5) chunk workers and a start call."
  }
}

run "a_low_concurrency_account_reserves_nothing" {
  command = plan

  variables {
    enable_batch_traits = true
    recommendations     = { reserved_concurrency = -1 }
    update_traits       = { reserved_concurrency = -1 }
    batch_traits        = { reserved_concurrency = -1 }
  }

  assert {
    condition     = module.recommendations.reserved_concurrency == -1 && module.update_traits.reserved_concurrency == -1 && module.batch_traits[0].reserved_concurrency == -1
    error_message = "-1 on each function: no reservation at all (nothing Lambda can refuse on a low quota)."
  }
}

run "the_batch_reservation_can_be_sized" {
  command = plan

  variables {
    enable_batch_traits = true
    batch_traits        = { max_concurrency = 2, reserved_concurrency = 10 }
  }

  assert {
    condition     = module.batch_traits[0].reserved_concurrency == 10
    error_message = "batch_traits.reserved_concurrency reaches the function."
  }
}

# ---- A new kms_key_arn and the write-only secrets (modules/segment_secrets) ------------------

run "secrets_created_under_one_key" {
  command = apply

  module {
    source = "./modules/segment_secrets"
  }

  # (Ephemeral inputs left unset break a test apply in Terraform 1.11: set, they are written.)
  variables {
    create_profile_token = true
    write_key            = "wk-test"
    profile_token        = "pt-test"
    deployment           = { name_prefix = "p", tags = {}, kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/old", iam_role_path = "/", iam_permissions_boundary = null }
  }
}

run "a_new_kms_key_does_not_rewrite_the_secrets" {
  command = plan

  module {
    source = "./modules/segment_secrets"
  }

  variables {
    create_profile_token = true
    deployment           = { name_prefix = "p", tags = {}, kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/new", iam_role_path = "/", iam_permissions_boundary = null }
  }

  # An update would send PutParameter without the write-only value: SSM gets an empty
  # value. The parameters keep their key; rotation is a replacement with the value given.
  assert {
    condition     = aws_ssm_parameter.write_key.key_id == "arn:aws:kms:us-east-1:123456789012:key/old" && aws_ssm_parameter.profile_token[0].key_id == "arn:aws:kms:us-east-1:123456789012:key/old"
    error_message = "A changed kms_key_arn must not update the write-only parameters in place."
  }
}

# ---- The gateway's own errors and CORS ----------------------------------------------------

run "gateway_errors_carry_no_cors_headers_with_cors_off" {
  command = plan

  assert {
    condition     = alltrue([for r in values(module.recommendations.gateway_responses) : length(try(r.responseParameters, {})) == 0])
    error_message = "CORS off: the gateway responses set no headers."
  }
}

run "gateway_errors_allow_any_origin_with_cors_star" {
  command = plan

  variables {
    api = { cors_allow_origins = ["*"], stage_logging = false }
  }

  assert {
    condition     = keys(module.recommendations.gateway_responses) == ["BAD_REQUEST_BODY", "DEFAULT_4XX", "DEFAULT_5XX"]
    error_message = "A customised BAD_REQUEST_BODY does not inherit DEFAULT_4XX: all three carry the headers."
  }
  assert {
    condition = alltrue([
      for r in values(module.recommendations.gateway_responses) :
      jsonencode(r.responseParameters) == jsonencode({ "gatewayresponse.header.Access-Control-Allow-Origin" = "'*'" })
    ])
    error_message = "[\"*\"]: every gateway error answers Access-Control-Allow-Origin: * (a static value, quoted)."
  }
}

run "gateway_errors_name_the_one_allowed_origin" {
  command = plan

  variables {
    api = { cors_allow_origins = ["https://shop.example.com"], stage_logging = false }
  }

  assert {
    condition = alltrue([
      for r in values(module.recommendations.gateway_responses) :
      jsonencode(r.responseParameters) == jsonencode({
        "gatewayresponse.header.Access-Control-Allow-Origin" = "'https://shop.example.com'"
        "gatewayresponse.header.Vary"                        = "'Origin'"
      })
    ])
    error_message = "One origin: that origin, statically, and Vary: Origin."
  }
}

run "gateway_errors_echo_the_origin_with_several_allowed" {
  command = plan

  variables {
    api = { cors_allow_origins = ["https://shop.example.com", "http://localhost:3000"], stage_logging = false }
  }

  assert {
    condition = alltrue([
      for r in values(module.recommendations.gateway_responses) :
      jsonencode(r.responseParameters) == jsonencode({
        "gatewayresponse.header.Access-Control-Allow-Origin" = "method.request.header.Origin"
        "gatewayresponse.header.Vary"                        = "'Origin'"
      })
    ])
    error_message = "Several origins: the gateway cannot choose among them, so it echoes the request's Origin (error bodies carry no data), with Vary: Origin."
  }
}
