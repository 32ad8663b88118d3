# IAM role names are at most 64 characters (IAM refuses longer ones at apply; the provider
# at plan). Every role this configuration creates is named <name_prefix>-<what>-<region>:
# with the longest name_prefix variables.tf accepts (32 characters) and the longest region
# code AWS has (us-isof-south-1, 15 characters), every one must still fit. Offline
# (mocked AWS provider answering that region), plan only.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "us-isof-south-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
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
}

run "every_role_name_fits_with_the_longest_prefix_and_region" {
  command = plan

  # Every role there is: both functions', the batch function's, Personalize's batch role
  # and the schedule's, the Segment role and the account's API Gateway logging role.
  variables {
    name_prefix         = "a2345678901234567890123456789012"
    enable_batch_traits = true
    batch_traits        = { schedule_expression = "rate(7 days)" }
    api                 = { manage_api_gateway_account = true }
  }

  assert {
    condition     = length(module.segment_destination.role_name) <= 64
    error_message = "The Segment role's name is longer than 64 characters."
  }
}
