# How segment.profile_api_rps is split between the containers that read the Profile API,
# in Terraform's own arithmetic (the segment_profile_api_budget output): for each
# configuration of the README's table, every container gets the same share, rounded down
# to a whole request/s from 1 up, and all shares together stay within the budget. With the
# user-state store the API reads the store and takes no share; update_traits' containers
# are the stream's plus the refresh queue's, at most its reserved concurrency.

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

  # 90 req/s over 20 traits containers (the reservation caps the stream's and the refresh
  # queue's together; the API reads the store) = 4.5, rounded down.
  assert {
    condition     = output.segment_profile_api_budget.per_container == 4 && output.segment_profile_api_budget.update_traits.share == 80 && output.segment_profile_api_budget.recommendations.share == 0
    error_message = "Defaults: 4 req/s per container, 80 for update_traits, none for the API."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 80 && output.segment_profile_api_budget.worst_second <= 90
    error_message = "Defaults: at most 80 requests in any second."
  }
  assert {
    condition     = output.segment_profile_api_budget.update_traits.max_concurrency == 20 && output.segment_profile_api_budget.update_traits.refresh_max_concurrency == 2 && output.segment_profile_api_budget.recommendations.max_concurrency == 0
    error_message = "Defaults: 20 traits containers, 2 of them at most on the refresh queue, no API container."
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

run "budget_with_the_reservation_the_stream_and_the_refresh_queue_need" {
  command = plan

  variables {
    update_traits   = { reserved_concurrency = 6 } # 4 shards (a new on-demand stream) + 2 refresh consumers
    recommendations = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 15 && output.segment_profile_api_budget.update_traits.share == 90 && output.segment_profile_api_budget.worst_second == 90
    error_message = "90 / 6 containers: 15 each, the whole budget."
  }
}

run "budget_gives_the_api_no_share_whatever_its_concurrency" {
  command = plan

  variables {
    update_traits   = { reserved_concurrency = 6 }
    recommendations = { reserved_concurrency = -1, purchase_exclusion = true }
    api             = { throttling_burst_limit = 500, stage_logging = false }
  }

  # Before the store the API counted its burst limit, 500 containers; it reads the store now.
  assert {
    condition     = output.segment_profile_api_budget.recommendations.max_concurrency == 0 && output.segment_profile_api_budget.per_container == 15
    error_message = "No API container counts against the budget."
  }
}

run "budget_of_a_provisioned_stream_counts_the_refresh_consumers" {
  command = plan

  variables {
    kinesis       = { stream_mode = "PROVISIONED", shard_count = 2 }
    update_traits = { parallelization_factor = 3, refresh_max_concurrency = 4, reserved_concurrency = -1 }
  }

  # No reservation: 2 shards x 3 + 4 refresh consumers.
  assert {
    condition     = output.segment_profile_api_budget.update_traits.max_concurrency == 10 && output.segment_profile_api_budget.per_container == 9 && output.segment_profile_api_budget.update_traits.share == 90
    error_message = "10 traits containers (6 on the stream, 4 on the refresh queue): 9 each."
  }
}

run "budget_of_a_provisioned_stream_is_capped_by_the_reservation" {
  command = plan

  variables {
    kinesis         = { stream_mode = "PROVISIONED", shard_count = 2 }
    update_traits   = { parallelization_factor = 3, refresh_max_concurrency = 4, reserved_concurrency = 8 }
    recommendations = { reserved_concurrency = -1 }
    api             = { throttling_burst_limit = 24, stage_logging = false }
  }

  assert {
    condition     = output.segment_profile_api_budget.update_traits.max_concurrency == 8 && output.segment_profile_api_budget.per_container == 11 && output.segment_profile_api_budget.worst_second == 88
    error_message = "min(8 reserved, 6 + 4): 8 containers, 11 each."
  }
}

run "budget_of_an_unreserved_on_demand_stream" {
  command = plan

  variables {
    update_traits = { reserved_concurrency = -1 }
  }

  assert {
    condition     = output.segment_profile_api_budget.update_traits.max_concurrency == 6 && output.segment_profile_api_budget.per_container == 15
    error_message = "An on-demand stream's 4 shards + 2 refresh consumers: 15 each."
  }
}

# The batch write-back enabled (a full plan of modules/batch_traits): with its own Profile
# API exclusion, each chunk worker is one more container in the split.
run "budget_counts_the_batch_workers_with_profile_exclusion" {
  command = plan

  variables {
    enable_batch_traits = true
    batch_traits        = { profile_exclusion = true, max_concurrency = 4, schedule_expression = "cron(0 3 ? * SUN *)" }
    update_traits       = { reserved_concurrency = 6 }
    recommendations     = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.batch_traits.max_concurrency == 4 && output.segment_profile_api_budget.batch_traits.share == 36
    error_message = "4 batch workers, 9 req/s each."
  }
  assert {
    condition     = output.segment_profile_api_budget.per_container == 9 && output.segment_profile_api_budget.update_traits.share == 54 && output.segment_profile_api_budget.recommendations.share == 0
    error_message = "90 / 10 containers (6 traits + 4 batch; the API none): 9 each, 54 and 36."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 90
    error_message = "10 containers x 9: the whole budget, not more."
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
    update_traits       = { reserved_concurrency = 6 }
    recommendations     = { reserved_concurrency = 10 }
  }

  assert {
    condition     = output.segment_profile_api_budget.batch_traits.max_concurrency == 0 && output.segment_profile_api_budget.per_container == 15
    error_message = "The batch function reads no profiles: 90 / 6 containers, 15 each, as without it."
  }
}

# More containers than requests/s: a fractional share, and a worst second of one request
# per container, above the budget, which the check reports.
run "budget_below_one_request_per_container" {
  command = plan

  variables {
    segment       = { profile_api_rps = 50 }
    update_traits = { reserved_concurrency = 80 }
  }

  assert {
    condition     = output.segment_profile_api_budget.per_container == 0.625 && output.segment_profile_api_budget.update_traits.share == 50 && output.segment_profile_api_budget.recommendations.share == 0
    error_message = "50 / 80 containers: 0.625 each."
  }
  assert {
    condition     = output.segment_profile_api_budget.worst_second == 80
    error_message = "80 containers x ceil(0.625)."
  }

  expect_failures = [check.profile_api_budget]
}
