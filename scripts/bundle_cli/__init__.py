"""scripts/bundle: the operator CLI (smoke, call, dlq, replay-failed, set-secrets)."""
