# How segment.profile_api_rps is split between the containers of both functions, in
# Terraform's own arithmetic (the segment_profile_api_budget output): for each
# configuration of the README's table, every container gets the same share, rounded down
# to a whole request/s from 1 up, and all shares together stay within the budget.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  personalize_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:campaign/c"
  segment_external_ids     = ["ws_test"]
  segment_space_id         = "spa_1"
  artifacts = {
    recommendations = "tests/fixtures/function.zip"
    update_traits   = "tests/fixtures/function.zip"
    layer           = "tests/fixtures/function.zip"
    batch_traits    = "tests/fixtures/function.zip"
  }
  # Decided (off): the plan does not warn that the stage logs nothing (check.api_stage_logging).
  api = { stage_logging = false }
}

run "defaults_are_safe_for_a_shared_account" {
  command = plan

  # 90 req/s over 20 traits (reserved) + 50 API (reserved) containers = 1.29, rounded down.
  assert {
    condition     = output.segment_profile_api_budget.per_container == 1 && output.segment_profile_api_budget.update_traits.share == 20 && output.segment_profile_api_budget.recommendations.share == 50
    error_message = "Defaults: 1 req/s per container, 20 for update_traits, 50 for the API."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 70 && output.segment_profile_api_budget.worst_second <= 90
    error_message = "Defaults: at most 70 requests in any second."
  }

  # The account-wide API Gateway logging role is not taken over (nor cleared on destroy);
  # no quota cuts every caller off with 429 for the rest of the month; failed batches stay
  # replayable for days; the alarms notify somebody; access logs (client IPs) are kept as
  # long as the function logs.
  assert {
    condition     = !var.api.manage_api_gateway_account && var.api.quota_limit == null && var.api.key_required
    error_message = "The API defaults must leave the account's logging role alone, set no quota and require a key."
  }
  assert {
    condition     = var.kinesis.retention_hours == 168 && var.alarms.create_sns_topic
    error_message = "The stream must keep 7 days by default and the alarms must notify a topic."
  }
  assert {
    condition     = var.api.access_log_retention_days == var.log_retention_days && var.log_retention_days == 30
    error_message = "Access logs and function logs must be kept 30 days by default."
  }
}

run "budget_with_small_reservations" {
  command = plan

  variables {
    update_traits   = { reserved_concurrency = 4 }
    recommendations = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 6 && output.segment_profile_api_budget.update_traits.share == 24 && output.segment_profile_api_budget.recommendations.share == 60
    error_message = "90 / 14 containers: 6 each, 24 and 60."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 84
    error_message = "14 containers x 6."
  }
}

run "budget_without_purchase_exclusion_on_the_api" {
  command = plan

  variables {
    update_traits   = { reserved_concurrency = 4 }
    recommendations = { purchase_exclusion = false }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 22 && output.segment_profile_api_budget.update_traits.share == 88 && output.segment_profile_api_budget.recommendations.share == 0
    error_message = "The API reads no profiles: update_traits gets the whole budget, 90 / 4 rounded down."
  }
  assert {
    condition     = output.segment_profile_api_budget.recommendations.max_concurrency == 0
    error_message = "No API container counts against the budget."
  }
}

run "budget_with_a_small_api_reservation" {
  command = plan

  variables {
    recommendations = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 3 && output.segment_profile_api_budget.update_traits.share == 60 && output.segment_profile_api_budget.recommendations.share == 30
    error_message = "90 / 30 containers: 3 each."
  }
}

run "budget_of_a_provisioned_stream_and_an_unreserved_api" {
  command = plan

  variables {
    kinesis         = { stream_mode = "PROVISIONED", shard_count = 2 }
    update_traits   = { parallelization_factor = 3 }
    recommendations = { reserved_concurrency = -1 }
    api             = { throttling_burst_limit = 24, stage_logging = false }
  }

  # update_traits: min(20 reserved, 2 shards x 3); the API: its burst limit, 24.
  assert {
    condition     = output.segment_profile_api_budget.update_traits.max_concurrency == 6 && output.segment_profile_api_budget.recommendations.max_concurrency == 24
    error_message = "6 traits containers (shards x parallelization) and 24 API containers (the burst limit)."
  }
  assert {
    condition     = output.segment_profile_api_budget.per_container == 3 && output.segment_profile_api_budget.update_traits.share == 18 && output.segment_profile_api_budget.recommendations.share == 72
    error_message = "90 / 30 containers: 3 each."
  }
}

# The batch write-back enabled (a full plan of modules/batch_traits): with its own Profile
# API exclusion, each chunk worker is one more container in the split.
run "budget_counts_the_batch_workers_with_profile_exclusion" {
  command = plan

  variables {
    enable_batch_traits = true
    batch_traits        = { profile_exclusion = true, max_concurrency = 4, schedule_expression = "cron(0 3 ? * SUN *)" }
    update_traits       = { reserved_concurrency = 4 }
    recommendations     = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.batch_traits.max_concurrency == 4 && output.segment_profile_api_budget.batch_traits.share == 20
    error_message = "4 batch workers, 5 req/s each."
  }
  assert {
    condition     = output.segment_profile_api_budget.per_container == 5 && output.segment_profile_api_budget.update_traits.share == 20 && output.segment_profile_api_budget.recommendations.share == 50
    error_message = "90 / 18 containers (4 + 10 + 4): 5 each, 20, 50 and 20."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 90
    error_message = "18 containers x 5: the whole budget, not more."
  }
  assert {
    condition     = output.batch_function_name == "segment-personalize-batch-traits" && output.batch_users_key == "input/users.json"
    error_message = "The batch module is planned with its function and the documented users file."
  }
  assert {
    condition     = length(module.batch_traits[0].alarm_names) == 4
    error_message = "The batch module plans its four alarms (dead letters, start failures, errors, failed chunks)."
  }
}

run "budget_leaves_the_batch_workers_out_without_profile_exclusion" {
  command = plan

  variables {
    enable_batch_traits = true
    batch_traits        = { max_concurrency = 50 }
    update_traits       = { reserved_concurrency = 4 }
    recommendations     = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.batch_traits.max_concurrency == 0 && output.segment_profile_api_budget.per_container == 6
    error_message = "The batch function reads no profiles: 90 / 14 containers, 6 each, as without it."
  }
}

# More containers than requests/s: a fractional share, and a worst second of one request
# per container, above the budget, which the check reports.
run "budget_below_one_request_per_container" {
  command = plan

  variables {
    segment       = { profile_api_rps = 50 }
    update_traits = { reserved_concurrency = 30 }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 0.625 && output.segment_profile_api_budget.update_traits.share == 18.75 && output.segment_profile_api_budget.recommendations.share == 31.25
    error_message = "50 / 80 containers: 0.625 each."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 80
    error_message = "80 containers x ceil(0.625)."
  }

  expect_failures = [check.profile_api_budget]
}
