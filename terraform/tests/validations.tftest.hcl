# Every validation of the root's inputs, offline (mocked AWS provider, plan only).
# Each "rejects_" run breaks exactly ONE rule of each input it sets, and expects exactly
# those inputs to be refused: a validation that lets its bad value through, or one that
# refuses a good value, fails the run. Runs break many inputs at once because each run
# costs a provider start (update_traits's cases come after kinesis's: Terraform does not
# evaluate a validation that reads an input which is itself invalid). The "accepts_" runs put every input at the edges of its range.
# `make test` runs this folder (tests/e2e/test_terraform_native.py).

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

# ---- What must plan ------------------------------------------------------------------------

run "accepts_every_input_at_an_edge_of_its_range" {
  command = plan

  variables {
    name_prefix              = "abc"
    kms_key_arn              = "arn:aws:kms:us-east-1:123456789012:key/0000-1111"
    iam_role_path            = "/workloads/"
    iam_permissions_boundary = "arn:aws:iam::123456789012:policy/boundary"
    personalize_campaign_arn = "arn:aws:personalize:eu-west-1:123456789012:recommender/r-1"
    personalize_filter_arn   = "arn:aws:personalize:us-east-1:123456789012:filter/f"
    personalize_tracking_id  = "0000-aaaa"
    num_results              = 500
    segment_external_ids     = ["ws", "src_1"]
    segment_space_id         = "spa_1"
    lambda_runtime           = "python3.11"
    lambda_architecture      = "x86_64"
    log_retention_days       = 3653
    segment = {
      region           = "eu"
      api_url          = "https://events.example.com/v1"
      profile_api_url  = "https://profiles.example.com"
      profile_api_rps  = 10000
      tracked_events   = ["Product Viewed"]
      purchase_events  = []
      item_id_property = "product_id"
    }
    recommendations = {
      memory_size           = 10240
      timeout               = 28
      reserved_concurrency  = -1
      profile_workers       = 32
      related_items_arn     = "arn:aws:personalize:us-east-1:123456789012:recommender/more-like-x"
      ranking_campaign_arn  = "arn:aws:personalize:us-east-1:123456789012:campaign/ranking"
      filters               = { genre = "arn:aws:personalize:us-east-1:123456789012:filter/genre", "by_2" = "arn:aws:personalize:us-east-1:123456789012:filter/two" }
      filter_parameters     = { genre = ["GENRES"] }
      promotions            = [{ name = "summer", percent_promoted_items = 100, filter = "genre", filter_values = { GENRES = ["beach"] } }]
      item_metadata_columns = ["CATEGORY", "PRICE", "_c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"]
      cache_max_age_seconds = 3600
    }
    api = {
      stage_name                = "prod_2"
      cors_allow_origins        = ["https://shop.example.com", "http://localhost:3000"]
      throttling_rate_limit     = 0.5
      throttling_burst_limit    = 0
      quota_limit               = 1
      quota_period              = "DAY"
      access_log_retention_days = 1
      stage_logging             = true
      waf_web_acl_arn           = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/acl/0000"
    }
    kinesis = {
      stream_mode     = "PROVISIONED"
      shard_count     = 2
      retention_hours = 8760
    }
    update_traits = {
      memory_size                = 128
      timeout                    = 900
      reserved_concurrency       = 0
      worker_threads             = 64
      batch_size                 = 10000
      batching_window_seconds    = 300
      parallelization_factor     = 10
      maximum_retry_attempts     = 10000
      maximum_record_age_seconds = 604800
      starting_position          = "TRIM_HORIZON"
      queue_retention_seconds    = 60
      # The user-state store's settings at their upper edges.
      min_refresh_interval_seconds = 900
      wait_for_seed                = true
      reseed_interval_seconds      = 31536000
      refresh_max_concurrency      = 1000
    }
    user_state = {
      ttl_days            = 3650
      deletion_protection = false
    }
    batch_traits = {
      schedule_expression     = "at(2030-01-01T03:00:00)"
      schedule_timezone       = "Europe/Paris"
      chunk_bytes             = 268435456
      max_concurrency         = 1000
      reserved_concurrency    = 1001
      segment_events_per_s    = 1000
      num_results             = 500
      users_key               = "input/2030/all-users_v2.json"
      profile_exclusion       = true
      batch_size              = 10
      max_receive_count       = 1000
      files_expiration_days   = 1
      reports_expiration_days = 1
      memory_size             = 10240
      timeout                 = 900
    }
    alarms = {
      sns_topic_arn          = "arn:aws:sns:us-east-1:123456789012:ops-alerts"
      email                  = "oncall@example.com"
      api_4xx_percent        = 100
      api_4xx_min_requests   = 1
      api_p99_latency_ms     = 1
      iterator_age_seconds   = 1
      stalled_periods        = 24
      failed_records_periods = 1
      period_seconds         = 60
    }
  }
}

run "accepts_the_lower_edges" {
  command = plan

  variables {
    num_results = 1
    segment     = { profile_api_rps = 0.001 }
    recommendations = {
      memory_size           = 128
      timeout               = 1
      profile_workers       = 1
      cache_max_age_seconds = 0
    }
    api = {
      cors_allow_origins = ["*"]
      quota_period       = "WEEK"
      stage_logging      = false
    }
    kinesis = { retention_hours = 24 }
    update_traits = {
      memory_size                = 10240
      timeout                    = 1
      worker_threads             = 1
      batch_size                 = 1
      batching_window_seconds    = 0
      parallelization_factor     = 1
      maximum_retry_attempts     = 0
      maximum_record_age_seconds = 60
      queue_retention_seconds    = 1209600
      # The user-state store's settings at their lower edges.
      min_refresh_interval_seconds = 0
      reseed_interval_seconds      = 3600
      refresh_max_concurrency      = 2
    }
    user_state = { ttl_days = 1 }
    batch_traits = {
      schedule_expression  = "rate(7 days)"
      chunk_bytes          = 1048576
      max_concurrency      = 2
      reserved_concurrency = -1
      segment_events_per_s = 0.2
      num_results          = 1
      users_key            = "input/u"
      batch_size           = 1
      max_receive_count    = 1
      memory_size          = 128
      timeout              = 60
    }
    alarms = {
      api_4xx_percent        = 0.1
      stalled_periods        = 1
      failed_records_periods = 24
      period_seconds         = 3600
    }
  }
}

# ---- What must not ------------------------------------------------------------------------

run "rejects_one_bad_value_per_input_01" {
  command = plan

  variables {
    batch_traits             = { schedule_expression = "every sunday" }                # not rate(), cron() or at()
    name_prefix              = "Segment"                                               # capitals
    kms_key_arn              = "alias/aws/kinesis"                                     # an alias, not a key ARN
    iam_role_path            = "workloads"                                             # no leading and trailing /
    iam_permissions_boundary = "arn:aws:iam::123456789012:role/boundary"               # a role, not a policy
    personalize_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:filter/f"   # a filter, not a campaign
    personalize_filter_arn   = "arn:aws:personalize:us-east-1:123456789012:campaign/c" # a campaign, not a filter
    personalize_tracking_id  = "not a tracker"                                         # spaces
    num_results              = 501                                                     # above 500
    segment_external_ids     = []                                                      # none
    segment                  = { region = "ap" }                                       # neither us nor eu
    lambda_runtime           = "python3.9"                                             # unsupported
    lambda_architecture      = "amd64"                                                 # not a Lambda architecture
    log_retention_days       = 10                                                      # not a CloudWatch Logs retention
    recommendations          = { memory_size = 64 }                                    # below 128 MB
    api                      = { stage_name = "v1/beta" }                              # a slash in the stage name
    kinesis                  = { stream_mode = "SERVERLESS" }                          # not ON_DEMAND or PROVISIONED
    alarms                   = { sns_topic_arn = "ops-alerts" }                        # not an SNS topic ARN
  }

  expect_failures = [
    var.batch_traits,
    var.name_prefix,
    var.kms_key_arn,
    var.iam_role_path,
    var.iam_permissions_boundary,
    var.personalize_campaign_arn,
    var.personalize_filter_arn,
    var.personalize_tracking_id,
    var.num_results,
    var.segment_external_ids,
    var.segment,
    var.lambda_runtime,
    var.lambda_architecture,
    var.log_retention_days,
    var.recommendations,
    var.api,
    var.kinesis,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_02" {
  command = plan

  variables {
    batch_traits             = { schedule_timezone = " " }                                  # a blank time zone
    enable_batch_traits      = true                                                         # on a recommender: batch inference needs a campaign
    personalize_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:recommender/r-1" # valid by itself
    name_prefix              = "a23456789012345678901234567890123"                          # 33 characters
    num_results              = 0                                                            # below 1
    segment_external_ids     = ["ws_ok", " "]                                               # a blank one
    segment                  = { api_url = "http://api.segment.io/v1" }                     # not https
    recommendations          = { timeout = 29 }                                             # API Gateway gives up at 29 s
    api                      = { cors_allow_origins = ["*", "https://shop.example.com"] }   # * beside another origin
    kinesis                  = { shard_count = 0 }                                          # no shard
    alarms                   = { email = "oncall@localhost" }                               # no domain
  }

  expect_failures = [
    var.batch_traits,
    var.enable_batch_traits,
    var.name_prefix,
    var.num_results,
    var.segment_external_ids,
    var.segment,
    var.recommendations,
    var.api,
    var.kinesis,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_03" {
  command = plan

  variables {
    batch_traits    = { chunk_bytes = 1048575 }                              # below 1 MiB
    num_results     = 2.5                                                    # not whole
    segment         = { profile_api_url = "http://profiles.segment.com/v1" } # not https
    recommendations = { reserved_concurrency = -2 }                          # below -1
    api             = { cors_allow_origins = ["https://shop.example.com/"] } # a trailing slash (browsers send none)
    kinesis         = { retention_hours = 23 }                               # below a day
    alarms          = { api_4xx_percent = 0 }                                # a share of 0
  }

  expect_failures = [
    var.batch_traits,
    var.num_results,
    var.segment,
    var.recommendations,
    var.api,
    var.kinesis,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_04" {
  command = plan

  variables {
    batch_traits    = { max_concurrency = 1 }                                   # below SQS's minimum of 2
    segment         = { profile_api_rps = 0 }                                   # no budget
    recommendations = { profile_workers = 33 }                                  # above 32
    api             = { cors_allow_origins = ["https://shop.example.com/app"] } # a path
    kinesis         = { retention_hours = 8761 }                                # above a year
    alarms          = { api_4xx_percent = 101 }                                 # above 100%
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.kinesis,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_05" {
  command = plan

  variables {
    batch_traits    = { segment_events_per_s = 1001 }                                               # above Engage's 1,000/s
    segment         = { profile_api_rps = 10001 }                                                   # above 10000
    recommendations = { related_items_arn = "arn:aws:personalize:us-east-1:123456789012:filter/f" } # a filter
    api             = { cors_allow_origins = ["https://a.example.com,https://b.example.com"] }      # two origins in one entry
    update_traits   = { memory_size = 10241 }                                                       # above 10240 MB
    alarms          = { api_4xx_min_requests = 0 }                                                  # no request
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_06" {
  command = plan

  variables {
    batch_traits    = { segment_events_per_s = 1, max_concurrency = 20 }                                    # 0.05 events/s per container
    segment         = { tracked_events = [] }                                                               # no tracked event
    recommendations = { ranking_campaign_arn = "arn:aws:personalize:us-east-1:123456789012:recommender/r" } # a recommender, not a campaign
    api             = { cors_allow_origins = ["shop.example.com"] }                                         # no scheme
    update_traits   = { timeout = 901 }                                                                     # above 900 s
    alarms          = { api_p99_latency_ms = 0 }                                                            # a latency of 0
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_07" {
  command = plan

  variables {
    batch_traits    = { num_results = 501 }                                                                # above 500
    segment         = { tracked_events = ["Product Viewed,Product Clicked"] }                              # a comma in a name
    recommendations = { filters = { "by genre" = "arn:aws:personalize:us-east-1:123456789012:filter/f" } } # a space in a filter name
    api             = { cors_allow_origins = ["ftp://shop.example.com"] }                                  # another scheme
    update_traits   = { reserved_concurrency = 1.5 }                                                       # not whole
    alarms          = { iterator_age_seconds = 0 }                                                         # an age of 0
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_08" {
  command = plan

  variables {
    batch_traits    = { users_key = "users.json" }                                                                                                # not under input/
    segment         = { purchase_events = [" "] }                                                                                                 # a blank name
    recommendations = { filters = { genre = "arn:aws:personalize:us-east-1:123456789012:filter/f" }, filter_parameters = { brand = ["BRANDS"] } } # parameters of an unknown filter
    api             = { cors_allow_origins = ["https://"] }                                                                                       # no host
    update_traits   = { worker_threads = 0 }                                                                                                      # no worker
    alarms          = { stalled_periods = 25 }                                                                                                    # above 24
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_09" {
  command = plan

  variables {
    batch_traits    = { batch_size = 11 }                                                                                                                                                                                                          # above 10
    segment         = { item_id_property = "id" }                                                                                                                                                                                                  # neither sku nor product_id
    recommendations = { filters = { genre = "arn:aws:personalize:us-east-1:123456789012:filter/f" }, promotions = [{ name = "a", percent_promoted_items = 10, filter = "genre" }, { name = "b", percent_promoted_items = 10, filter = "genre" }] } # two promotions
    api             = { cors_allow_origins = [""] }                                                                                                                                                                                                # empty
    update_traits   = { batch_size = 10001 }                                                                                                                                                                                                       # above 10000
    alarms          = { failed_records_periods = 0 }                                                                                                                                                                                               # no period
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_10" {
  command = plan

  variables {
    batch_traits    = { max_receive_count = 0 }                                                                                                                                      # no attempt
    segment         = { recommended_trait = "" }                                                                                                                                     # a blank trait name
    recommendations = { filters = { genre = "arn:aws:personalize:us-east-1:123456789012:filter/f" }, promotions = [{ name = "a", percent_promoted_items = 101, filter = "genre" }] } # a promotion above 100%
    api             = { throttling_rate_limit = 0 }                                                                                                                                  # no rate
    update_traits   = { batching_window_seconds = 301 }                                                                                                                              # above 300 s
    alarms          = { period_seconds = 90 }                                                                                                                                        # not whole minutes
  }

  expect_failures = [
    var.batch_traits,
    var.segment,
    var.recommendations,
    var.api,
    var.update_traits,
    var.alarms,
  ]
}

run "rejects_one_bad_value_per_input_11" {
  command = plan

  variables {
    batch_traits    = { files_expiration_days = 0 }                                                    # kept no day
    recommendations = { promotions = [{ name = "a", percent_promoted_items = 10, filter = "genre" }] } # a promotion with an unknown filter
    api             = { throttling_burst_limit = -1 }                                                  # a negative burst
    update_traits   = { parallelization_factor = 11 }                                                  # above 10
  }

  expect_failures = [
    var.batch_traits,
    var.recommendations,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_12" {
  command = plan

  variables {
    batch_traits    = { reports_expiration_days = 7 }                                                                  # reports go before the files (14 days)
    recommendations = { item_metadata_columns = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11"] } # 11 metadata columns
    api             = { quota_limit = 0 }                                                                              # a quota of 0
    update_traits   = { maximum_retry_attempts = -1 }                                                                  # infinite retries
  }

  expect_failures = [
    var.batch_traits,
    var.recommendations,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_13" {
  command = plan

  variables {
    batch_traits    = { memory_size = 64 }                # below 128 MB
    recommendations = { cache_max_age_seconds = 3601 }    # above an hour
    api             = { quota_limit = 10.5 }              # a fractional quota
    update_traits   = { maximum_record_age_seconds = -1 } # an infinite record age
  }

  expect_failures = [
    var.batch_traits,
    var.recommendations,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_14" {
  command = plan

  variables {
    batch_traits  = { timeout = 901 }                      # above 15 minutes
    api           = { quota_period = "YEAR" }              # not DAY, WEEK or MONTH
    update_traits = { starting_position = "AT_TIMESTAMP" } # not LATEST or TRIM_HORIZON
  }

  expect_failures = [
    var.batch_traits,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_15" {
  command = plan

  variables {
    batch_traits  = { profile_exclusion = true }          # no segment_space_id in this file
    api           = { access_log_retention_days = 2 }     # not a CloudWatch Logs retention
    update_traits = { queue_retention_seconds = 1209601 } # above 14 days
  }

  expect_failures = [
    var.batch_traits,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_16" {
  command = plan

  variables {
    batch_traits  = { users_key = "input/../state/x.json" }                                             # leaves input/
    api           = { waf_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/acl/0000" } # a global (CloudFront) web ACL
    update_traits = { maximum_record_age_seconds = 86400 }                                              # older than the stream keeps (kinesis.retention_hours = 24 in this run)
    kinesis       = { retention_hours = 24 }                                                            # valid: the stream keeps a day
  }

  expect_failures = [
    var.batch_traits,
    var.api,
    var.update_traits,
  ]
}

run "rejects_one_bad_value_per_input_17" {
  command = plan

  variables {
    batch_traits = { max_concurrency = 5, reserved_concurrency = 5 } # no room for a start call beside 5 workers
  }

  expect_failures = [
    var.batch_traits,
  ]
}

# The user-state store's settings (issue 20).
run "rejects_one_bad_value_per_input_18" {
  command = plan

  variables {
    update_traits = { min_refresh_interval_seconds = 901 } # past SQS's 15-minute delay
    user_state    = { ttl_days = 0 }                       # expires at once
  }

  expect_failures = [
    var.update_traits,
    var.user_state,
  ]
}

run "rejects_one_bad_value_per_input_19" {
  command = plan

  variables {
    update_traits = { reseed_interval_seconds = 1800 } # neither never (0) nor at least an hour
    user_state    = { ttl_days = 3651 }                # above ten years
  }

  expect_failures = [
    var.update_traits,
    var.user_state,
  ]
}

run "rejects_one_bad_value_per_input_20" {
  command = plan

  variables {
    update_traits = { refresh_max_concurrency = 1 } # below SQS's minimum of 2
    user_state    = { ttl_days = 1.5 }              # not whole days
  }

  expect_failures = [
    var.update_traits,
    var.user_state,
  ]
}

run "rejects_a_fractional_refresh_interval" {
  command = plan

  variables {
    update_traits = { min_refresh_interval_seconds = 2.5 } # DelaySeconds is whole seconds
  }

  expect_failures = [
    var.update_traits,
  ]
}

run "rejects_a_trait_name_the_functions_refuse" {
  command = plan

  variables {
    segment = { purchased_trait = "orders.items" } # a dot: Segment reads a path
  }

  expect_failures = [
    var.segment,
  ]
}

run "rejects_a_trait_name_with_a_comma" {
  command = plan

  variables {
    segment = { recommended_trait = "recs,more" } # the Profile API's include= list
  }

  expect_failures = [
    var.segment,
  ]
}

run "accepts_trait_names_at_the_edge_of_the_rule" {
  command = plan

  variables {
    segment = {
      recommended_trait = "a-b:c_ü"
      purchased_trait   = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" # 255
    }
  }
}


# ---- Checks and preconditions ----------------------------------------------------------------

run "warns_when_the_profile_api_budget_cannot_hold_every_container" {
  command = plan

  variables {
    segment_space_id = "spa_1"
    segment          = { profile_api_rps = 10 } # 20 traits containers, 1 request/s each at least
  }

  expect_failures = [check.profile_api_budget]
}

run "lambda_function_rejects_a_role_name_iam_would_refuse" {
  command = plan

  module {
    source = "./modules/lambda_function"
  }

  variables {
    function_name        = "fn"
    zip_path             = "tests/fixtures/function.zip"
    memory_size          = 128
    timeout              = 3
    reserved_concurrency = -1
    role_name            = "role-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" # 65 characters: IAM allows 64
    lambda               = { runtime = "python3.13", architecture = "arm64", layer_arns = [], tracing_mode = "PassThrough", log_retention_days = 1 }
    deployment           = { name_prefix = "p", tags = {}, kms_key_arn = null, iam_role_path = "/", iam_permissions_boundary = null }
  }

  expect_failures = [aws_iam_role.this]
}

run "lambda_function_rejects_a_function_name_lambda_would_refuse" {
  command = plan

  module {
    source = "./modules/lambda_function"
  }

  variables {
    function_name        = "fn.with.dots"
    zip_path             = "tests/fixtures/function.zip"
    memory_size          = 128
    timeout              = 3
    reserved_concurrency = -1
    lambda               = { runtime = "python3.13", architecture = "arm64", layer_arns = [], tracing_mode = "PassThrough", log_retention_days = 1 }
    deployment           = { name_prefix = "p", tags = {}, kms_key_arn = null, iam_role_path = "/", iam_permissions_boundary = null }
  }

  expect_failures = [var.function_name]
}
