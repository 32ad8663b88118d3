"""Importing the handler is cheap and safe: no SDK, no environment, no crash."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FUNCTIONS

PROBE = """
import importlib.util, json, os, sys
os.environ.clear()  # nothing configured at all
spec = importlib.util.spec_from_file_location("reco_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = sorted(m for m in ("boto3", "botocore", "requests", "urllib3") if m in sys.modules)
response = module.lambda_handler({"queryStringParameters": {"userId": "u"}}, None)
print(json.dumps({"heavy": heavy, "status": response["statusCode"], "body": response["body"]}))
"""


def test_import_touches_no_sdk_and_an_unconfigured_call_is_a_clean_500() -> None:
    path = FUNCTIONS / "recommendations" / "app.py"
    env = {"PYTHONPATH": f"{FUNCTIONS}:{FUNCTIONS / 'recommendations'}"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["status"] == 500
    assert json.loads(report["body"])["error"]["code"] == "configuration_error"
    assert "Traceback" not in result.stdout + result.stderr
