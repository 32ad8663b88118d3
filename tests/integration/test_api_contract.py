"""The OpenAPI document against the running system: Schemathesis generates requests from
terraform/modules/recommendations/openapi.yaml and sends them, with the API key, to the
sandbox's local gateway (scripts/sandbox/gateway.py) in front of the unmodified handler and
the Personalize and Segment (Profile API) emulators, every capability configured as the
sandbox configures it, purchased-item exclusion included (the token in SSM on moto).

Passes only if no answer is a 5xx other than the documented 502/503, every status code,
content type, header and body matches the document, and invalid input is rejected (4xx).
Bounded: a fixed number of examples per operation, derandomised, a few seconds in all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devkit.aws import apply_env, fake_aws_env, local_client, moto_server
from devkit.fixtures import started_segment, trained_personalize
from devkit.loader import load_app
from reco_api import runtime
from sandbox.gateway import ROUTES, ApiGateway, GatewayServer

DOCUMENT = ROOT / "terraform" / "modules" / "recommendations" / "openapi.yaml"
KEY = "contract-test-key-0123456789abcdef"
TOKEN_PARAMETER = "/contract-test/profile-token"
EXAMPLES = 40  # per operation and phase; about 2 s in all on a shared 2-core machine
COUNT: dict[str, int] = {}

schema = schemathesis.openapi.from_path(str(DOCUMENT))


@schemathesis.check
def only_documented_server_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """500 configuration_error never happens here (the deployment is valid): only the
    documented Personalize failures 502/503 may be a 5xx."""
    status = response.status_code
    if status >= 500 and status not in (502, 503):
        raise AssertionError(f"undocumented server error {status}: {response.text[:300]}")
    return None


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    saved = dict(os.environ)
    with (
        moto_server() as moto_url,
        trained_personalize(seed=1) as emu,
        started_segment(seed=1) as segment,
    ):
        segment.set_traits("user-0001", {"purchased_products": ["SKU-0001", "SKU-0002"]})
        local_client("ssm", moto_url).put_parameter(
            Name=TOKEN_PARAMETER, Value=segment.profile_token, Type="SecureString", Overwrite=True
        )
        apply_env(fake_aws_env(endpoints={"personalize-runtime": emu.url, "ssm": moto_url}))
        os.environ.update(
            {
                "PERSONALIZE_CAMPAIGN_ARN": emu.campaign_arn,
                "PERSONALIZE_RELATED_ITEMS_ARN": emu.related_items_campaign_arn,
                "PERSONALIZE_RANKING_CAMPAIGN_ARN": emu.ranking_campaign_arn,
                "PERSONALIZE_FILTERS": json.dumps(
                    {
                        "category": {"arn": emu.category_filter_arn, "parameters": ["CATEGORIES"]},
                        "exclude-purchased": emu.purchase_filter_arn,
                    }
                ),
                "ITEM_METADATA_COLUMNS": "NAME,CATEGORY,PRICE",
                "CACHE_MAX_AGE_S": "10",
                "SEGMENT_SPACE_ID": segment.space_id,
                "SEGMENT_PROFILE_TOKEN_PARAMETER": TOKEN_PARAMETER,
                "SEGMENT_PROFILE_API_URL": f"{segment.url}/v1",
                "PROFILE_TIMEOUT_MS": "2000",
                "PROFILE_CACHE_TTL_S": "0",  # every request with a user reads the profile
            }
        )
        os.environ.pop("PERSONALIZE_FILTER_ARN", None)
        runtime.reset()
        handler = load_app("recommendations")
        gateway = ApiGateway(lambda event, _rid: handler.lambda_handler(event, None), KEY)
        server = GatewayServer("127.0.0.1", 0, gateway)
        server.start()
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            server.stop()
            print(f"schemathesis requests per operation: {COUNT}")
            profile_reads = sum(1 for r in segment.request_log() if r.operation == "profile")
            print(f"Profile API reads: {profile_reads}")
            runtime.reset()
            os.environ.clear()
            os.environ.update(saved)


def test_the_gateway_routes_are_the_documents() -> None:
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented == set(ROUTES)


def test_the_document_is_valid_openapi_3() -> None:
    from openapi_spec_validator import validate

    validate(yaml.safe_load(DOCUMENT.read_text(encoding="utf-8")))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(case: Any, gateway_url: str) -> None:
    COUNT[case.operation.label] = COUNT.get(case.operation.label, 0) + 1
    case.call_and_validate(
        base_url=gateway_url,
        headers={"x-api-key": KEY},
        checks=[
            only_documented_server_errors,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
        excluded_checks=[not_a_server_error],
        timeout=10,
    )
