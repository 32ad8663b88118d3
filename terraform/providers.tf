# Region and credentials come from the usual AWS settings (AWS_REGION, AWS_PROFILE, ...)
# unless aws_region is set. Tests point the provider at a local emulator with an override
# file they generate; nothing here knows about it.
provider "aws" {
  region = var.aws_region
}
