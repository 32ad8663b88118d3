"""Documentation generators and checks (run with PYTHONPATH=scripts)."""
