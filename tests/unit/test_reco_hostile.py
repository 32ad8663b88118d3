"""Hostile input and edge semantics of the recommendations API (issue 12): every answer is
JSON with a documented status, in time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_reco_handler import ENV, FakePersonalize, body, fixture

from reco_api.handler import handle_with
from reco_api.runtime import Runtime


class Context:
    aws_request_id = "lambda-req-1"

    def __init__(self, remaining_ms: int = 10_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def run(event: Any, personalize: Any = None, context: Any = None) -> dict[str, Any]:
    fake = personalize or FakePersonalize()
    rt = Runtime(ENV, personalize=lambda: fake)
    return handle_with(rt, event, context or Context())


# -- defect 2: ids that cannot be encoded as UTF-8 ------------------------------------------


@pytest.mark.parametrize("name", ["userId", "itemId"])
def test_an_unencodable_id_is_a_400_not_a_500(name: str) -> None:
    event = fixture("get_user.json")
    event["queryStringParameters"] = {name: "u\ud800"}
    event["multiValueQueryStringParameters"] = {name: ["u\ud800"]}
    fake = FakePersonalize()
    response = run(event, fake)
    assert response["statusCode"] == 400
    assert body(response)["error"] == {
        "code": "invalid_parameter",
        "message": f"{name} must be valid Unicode text",
    }
    assert fake.calls == []
    json.dumps(response, ensure_ascii=False).encode("utf-8")  # the answer itself is encodable
