terraform {
  # 1.11: ephemeral variables and write-only arguments keep Segment credentials out of
  # the plan and the state.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
