"""Code shared by both Lambda functions: settings, logs and metrics, AWS and HTTP clients,
the Segment Profile API, Personalize recommendations and purchased-item exclusion.

Imports nothing heavy at import time: boto3 and requests are imported on first use.
"""
