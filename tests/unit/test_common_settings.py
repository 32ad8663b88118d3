"""common.settings: a setting is one record, the shared ones are declared once, and every
function that reads a shared record accepts and refuses the same values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from backfill import settings as batch_settings

from common import settings as shared
from common.config import ConfigError
from common.log import level_of
from common.runtime import FunctionRuntime
from common.settings import Integer, Setting, Text
from reco_api import settings as reco_settings
from traits_sync import settings as traits_settings

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
RECOMMENDER = "arn:aws:personalize:us-east-1:123456789012:recommender/shop"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/no-purchases"
PROFILE = {"SEGMENT_SPACE_ID": "spa_1", "SEGMENT_PROFILE_TOKEN_PARAMETER": "/shop/token"}

# Each function: its settings module and the smallest environment it loads with.
FUNCTIONS: dict[str, tuple[Any, dict[str, str]]] = {
    "recommendations": (reco_settings, {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN}),
    "update_traits": (
        traits_settings,
        {
            "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
            "SEGMENT_WRITE_KEY_PARAMETER": "/segment/write-key",
            "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            # The store without coalescing needs no refresh queue.
            "MIN_REFRESH_INTERVAL_S": "0",
        },
    ),
    "batch_traits": (
        batch_settings,
        {
            "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
            "BATCH_BUCKET": "shop-batch-traits",
            "BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/shop-batch-personalize",
            "CHUNK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/chunks",
            "SEGMENT_WRITE_KEY_PARAMETER": "/shop/segment/write-key",
        },
    ),
}

# Values tried on each shared setting: accepted and refused ones, the edges included.
TRAITS = ["orders", "purchased_products", "a-b:c", "x" * 255, "x" * 256, "a.b", "a,b", "a b"]
TRAITS += ["$x", " ", "ü_trait"]
PROBES: dict[str, list[str]] = {
    "PURCHASED_TRAIT": TRAITS,
    "RECOMMENDED_TRAIT": TRAITS,
    "DEPLOYMENT_NAME": ["shop-eu", "Shop_1", "x" * 40, "x" * 41, "a b", "a.b", "é", ""],
    "NUM_RESULTS": ["1", "500", "25", "0", "501", "2.5", "ten", " 7 "],
    "EXCLUSION_HEADROOM": ["0", "500", "-1", "501", "x"],
    "PERSONALIZE_CAMPAIGN_ARN": [CAMPAIGN, RECOMMENDER, FILTER, "campaign/shop", ""],
    "PERSONALIZE_FILTER_ARN": [FILTER, CAMPAIGN, "filter/x", ""],
    "SEGMENT_WRITE_KEY_PARAMETER": ["/segment/write-key", "has spaces", ""],
    "SEGMENT_API_URL": ["https://events.eu1.segmentapis.com/v1", "api.segment.io", ""],
    "SEGMENT_SPACE_ID": ["spa_1", "spa 1", "x" * 129, ""],
    "SEGMENT_PROFILE_TOKEN_PARAMETER": ["/t", "a b", ""],
    "SEGMENT_PROFILE_API_URL": ["https://profiles.euw1.segment.com/v1/", "profiles", ""],
    "SEGMENT_PROFILE_API_RPS": ["0.5", "100", "0", "nan", "x", ""],
    "USER_STATE_TABLE": ["shop-user-state", "t.1_a-b", "ab", "my table", "a" * 256, ""],
    "LOG_HASH_KEY_PARAMETER": ["/shop/log-key", "a b", ""],
    "METRICS_NAMESPACE": ["Shop", ""],
    "LOG_LEVEL": ["debug", "ERROR", "loud", ""],
}
# What a setting needs beside it to be read at all (the Profile API is read as a pair).
COMPANIONS: dict[str, dict[str, str]] = {
    "SEGMENT_SPACE_ID": {"SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"},
    "SEGMENT_PROFILE_TOKEN_PARAMETER": {"SEGMENT_SPACE_ID": "spa_1"},
    "SEGMENT_PROFILE_API_RPS": PROFILE,
}


# Read leniently by design: the logger must exist to report a configuration error.
LENIENT = {"LOG_LEVEL"}


def _records(module: Any) -> tuple[Setting[Any], ...]:
    records = module.SETTINGS
    assert isinstance(records, tuple)
    return records


SHARED: list[Setting[Any]] = [
    value for value in vars(shared).values() if isinstance(value, Setting)
]


def _verdict(module: Any, env: dict[str, str]) -> str | None:
    """What the function makes of ``env`` on a cold start: None, or the refused setting.
    FunctionRuntime reads what every function reads (metrics, logs) and then ``load``."""
    loaded = FunctionRuntime("test", module.load, env)
    return None if loaded.config_error is None else loaded.config_error.name


def _record_verdict(record: Setting[Any], env: Mapping[str, str]) -> str | None:
    try:
        record.read(env)
    except ConfigError as exc:
        assert exc.name == record.name
        return exc.name
    return None


def test_every_shared_record_is_probed_and_read_by_a_function() -> None:
    assert {record.name for record in SHARED} == set(PROBES)
    for record in SHARED:
        readers = [name for name, (module, _) in FUNCTIONS.items() if record in module.SETTINGS]
        assert readers, f"{record.name} is shared but no function reads it"


@pytest.mark.parametrize("record", SHARED, ids=lambda record: record.name)
def test_a_shared_setting_accepts_and_refuses_the_same_values_in_every_function(
    record: Setting[Any],
) -> None:
    readers = {name: entry for name, entry in FUNCTIONS.items() if record in entry[0].SETTINGS}
    for value in PROBES[record.name]:
        changes = {**COMPANIONS.get(record.name, {}), record.name: value}
        expected = _record_verdict(record, changes)
        verdicts = {
            name: _verdict(module, {**minimal, **changes})
            for name, (module, minimal) in readers.items()
        }
        assert len(set(verdicts.values())) == 1, (value, verdicts)  # the same everywhere
        verdict = next(iter(verdicts.values()))
        if record.name in LENIENT:
            assert verdict is None, value
        elif expected is not None:
            assert verdict == expected, value
        elif not (value == "" and record.name in COMPANIONS):  # unset beside its pair
            assert verdict is None, value


def _accepted(record: Setting[Any]) -> list[str]:
    return [v for v in PROBES[record.name] if _record_verdict(record, {record.name: v}) is None]


def test_the_trait_and_deployment_rules() -> None:
    """Traits: the strictest rule correct for the Profile API's include= list and Segment's
    trait names (no comma, no whitespace, no `.` or `$`, 1-255 characters). Deployment: what
    batch job names and metric dimensions both take, default `default`."""
    expected = ["orders", "purchased_products", "a-b:c", "x" * 255, " ", "ü_trait"]
    assert _accepted(shared.PURCHASED_TRAIT) == _accepted(shared.RECOMMENDED_TRAIT) == expected
    assert shared.PURCHASED_TRAIT.value({"PURCHASED_TRAIT": " "}) == "purchased_products"
    assert _accepted(shared.DEPLOYMENT_NAME) == ["shop-eu", "Shop_1", "x" * 40, ""]
    assert shared.DEPLOYMENT_NAME.value({}) == "default"


class _Recording(dict[str, str]):
    """An environment that remembers each variable looked up."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.looked_up: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.looked_up.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.looked_up.add(key)
        return super().__contains__(key)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_reads_exactly_the_records_it_lists(function: str) -> None:
    """SETTINGS (the table's rows) is what the function reads: nothing read is undeclared,
    nothing declared is unread."""
    module, minimal = FUNCTIONS[function]
    env = _Recording({**minimal, **PROFILE, "USER_STATE_TABLE": "shop-user-state"})
    runtime = FunctionRuntime("test", module.load, env)
    assert runtime.config_error is None
    assert env.looked_up == {record.name for record in _records(module)}


def test_a_record_without_a_meaning_fails() -> None:
    for meaning in ("", "   \n "):
        with pytest.raises(ValueError, match="NUM_ITEMS: a setting needs a meaning"):
            Setting("NUM_ITEMS", Integer(1, 5), meaning, default="2")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Setting("num_items", Integer(1, 5), "items"), "UPPER_SNAKE_CASE"),
        (lambda: Setting("N", Integer(1, 5), "items", default="2", required=True), "required"),
        (lambda: Setting("N", Integer(1, 5), "items", default="9"), "N: must be an integer"),
        (lambda: Setting("T", Text("[a-z]+", "lowercase"), "t", default="A"), "T: must be"),
    ],
)
def test_a_malformed_record_fails_where_it_is_declared(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises((ValueError, ConfigError), match=message):
        make()


def test_reading_a_record() -> None:
    items = Setting("ITEMS", Integer(1, 5), "items", default="2")
    assert (items.value({}), items.value({"ITEMS": " 4 "})) == (2, 4)
    with pytest.raises(ConfigError) as raised:
        items.value({"ITEMS": "6"})
    assert (raised.value.name, raised.value.reason) == ("ITEMS", "must be an integer 1..5")
    queue = Setting("QUEUE", Text(), "the queue", required=True)
    with pytest.raises(ConfigError, match="QUEUE: is required but not set"):
        queue.read({"QUEUE": "  "})
    optional = Setting("FILTER", shared.Arn(("filter",)), "a filter")
    assert optional.read({}) is None
    with pytest.raises(ConfigError, match="FILTER: is required but not set"):
        optional.value({})


def test_a_malformed_deployment_name_is_a_configuration_error_not_a_crash() -> None:
    for function, (module, minimal) in FUNCTIONS.items():
        runtime = FunctionRuntime("test", module.load, {**minimal, "DEPLOYMENT_NAME": "a b"})
        assert runtime.config_error is not None, function
        assert runtime.config_error.name == "DEPLOYMENT_NAME"
        assert runtime.metrics.deployment == "default"  # the metrics still carry it


# Literals of shared names left in recommendations' modules that issue 24 item 1 rewrites
# (request/handler edges; another branch): replace each with the record's ``.name``.
PENDING: set[tuple[str, str]] = set()  # every shared name is read through its record


def test_each_shared_name_is_a_literal_in_one_file_only() -> None:
    functions = ROOT / "functions"
    found: set[tuple[str, str]] = set()
    for path in sorted(functions.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(functions))
        for record in SHARED:
            if re.search(rf"[\"']{record.name}[\"']", text):
                found.add((where, record.name))
    assert {name for where, name in found if where == "common/settings.py"} == set(PROBES)
    elsewhere = {hit for hit in found if hit[0] != "common/settings.py"}
    assert elsewhere == PENDING, "use the record's .name (and empty PENDING once done)"


def test_log_level_is_read_from_its_record_leniently() -> None:
    assert [level_of({"LOG_LEVEL": raw}) for raw in ("debug", " Error ", "loud", "")] == [
        "DEBUG",
        "ERROR",
        "INFO",  # refused by the record, but the logger must exist to report problems
        "INFO",
    ]
    runtime = FunctionRuntime(
        "test", reco_settings.load, {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "LOG_LEVEL": "debug"}
    )
    assert runtime.logger.threshold == 10
