"""Helpers to run Terraform offline (provider mirror) and against a local AWS emulator."""
