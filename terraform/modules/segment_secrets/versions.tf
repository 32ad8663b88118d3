terraform {
  # Ephemeral variables (1.10) and write-only arguments (1.11) keep secret values out of
  # the plan and the state.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}
