"""What the CLI talks to: a running sandbox (.sandbox/state.json) or a deployed stack
(`terraform output -json`, AWS credentials from the usual chain)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".sandbox"
DEFAULT_TERRAFORM_DIR = ROOT / "terraform"
SANDBOX_SPACE_ID = "spa_sandbox"  # scripts/sandbox/runner.py
DEFAULT_TRAIT = "recommended_products"
DEFAULT_PURCHASED_TRAIT = "purchased_products"


class TargetError(Exception):
    """The target cannot be resolved; the message is the one line the user sees."""


@dataclass(frozen=True)
class BatchTarget:
    """The batch_traits module's resources (Terraform outputs, or the sandbox's state.json
    ``batch`` entry). The endpoints are None on a deployed stack: the SDK's defaults."""

    bucket: str
    users_key: str
    function_name: str
    chunk_queue_url: str | None
    dead_letter_queue_url: str | None
    personalize_endpoint_url: str | None = None
    lambda_endpoint_url: str | None = None


@dataclass(frozen=True)
class Target:
    kind: str  # "sandbox" or "stack"
    region: str
    stream_name: str
    dead_letter_queue_url: str
    on_failure_queue_url: str
    api_url: str | None
    api_key: str | None
    write_key_parameter: str | None
    profile_token_parameter: str | None
    function_name: str | None = None
    endpoint_url: str | None = None  # the sandbox's moto server; None: real AWS endpoints
    profile_api_url: str | None = None
    space_id: str | None = None
    trait: str = DEFAULT_TRAIT
    deployment: str | None = None
    metrics_namespace: str = "SegmentPersonalize"
    handlers_log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    batch: BatchTarget | None = None  # None: the batch_traits module is not enabled
    # The user-state store's table (USER_STATE_TABLE of update_traits); None: no store.
    user_state_table: str | None = None
    user_state_ttl_days: int = 400
    # update_traits' refresh queue (REFRESH_QUEUE_URL): where `dlq redrive` puts back a
    # trailing refresh the queue's redrive policy dead-lettered.
    refresh_queue_url: str | None = None
    purchased_trait: str = DEFAULT_PURCHASED_TRAIT
    # The deployment's Profile API budget in requests/s (segment.profile_api_rps), if known.
    profile_api_rps: float | None = None

    @overload
    def client(self, service: Literal["kinesis"]) -> KinesisClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["ssm"]) -> SSMClient: ...
    @overload
    def client(self, service: str) -> Any: ...  # cloudwatch, lambda: no stubs pinned for them
    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=3, read_timeout=20, retries={"mode": "standard", "max_attempts": 4}
        )
        make: Any = boto3.client  # typed per service name; ours is a runtime string
        if self.endpoint_url is None:
            return make(service, region_name=self.region, config=config)
        return make(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the sandbox's moto accepts any
            config=config,
        )


def from_sandbox(state_dir: Path = DEFAULT_STATE_DIR) -> Target:
    path = state_dir / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(f"no sandbox state at {path}: start it with `make sandbox`") from None
    except ValueError as exc:
        raise TargetError(f"{path} is not JSON: {exc}") from None
    if not state.get("running"):
        raise TargetError(f"the sandbox in {state_dir} is not running (state.json says so)")
    try:
        stream_name = str(state["stream_name"])
        # The sandbox names its resources like Terraform: /<prefix>/segment/...
        prefix = stream_name.removesuffix("-segment-events")
        segment = state.get("segment") if isinstance(state.get("segment"), dict) else {}
        segment_url = str(segment.get("tracking_url") or state["segment_url"]).rstrip("/")
        return Target(
            kind="sandbox",
            region=str(state.get("region") or "us-east-1"),
            stream_name=stream_name,
            dead_letter_queue_url=str(state["dead_letter_queue_url"]),
            on_failure_queue_url=str(state["on_failure_queue_url"]),
            api_url=str(state["api_url"]),
            api_key=state.get("api_key"),
            write_key_parameter=state.get("write_key_parameter", f"/{prefix}/segment/write-key"),
            profile_token_parameter=state.get(
                "profile_token_parameter", f"/{prefix}/segment/profile-token"
            ),
            endpoint_url=str(state["moto_url"]),
            profile_api_url=f"{segment_url}/v1",
            space_id=str(state.get("space_id") or SANDBOX_SPACE_ID),
            deployment=prefix,
            handlers_log=state_dir / "handlers.log",
            extra={"example_user": state.get("example_user")},
            batch=_sandbox_batch(state.get("batch")),
            user_state_table=_table_name(state.get("user_state_table")),
            refresh_queue_url=state.get("refresh_queue_url") or None,
            profile_api_rps=_number(segment.get("profile_api_rps")),
        )
    except KeyError as exc:
        raise TargetError(f"{path} lacks {exc.args[0]!r}: is the sandbox up to date?") from None


def from_terraform(directory: Path = DEFAULT_TERRAFORM_DIR) -> Target:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise TargetError("terraform is not on PATH (or use --sandbox)")
    try:
        result = subprocess.run(
            [terraform, "output", "-json"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TargetError(f"`terraform output -json` in {directory} took over 120 s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise TargetError(f"`terraform output -json` in {directory}: {last}")
    outputs = {k: v.get("value") for k, v in json.loads(result.stdout or "{}").items()}
    if "kinesis_stream_arn" not in outputs:
        raise TargetError(f"no deployed stack in {directory} (terraform output is empty)")
    arn = str(outputs["kinesis_stream_arn"])
    return Target(
        kind="stack",
        region=arn.split(":")[3],
        stream_name=str(outputs["kinesis_stream_name"]),
        dead_letter_queue_url=str(outputs["dead_letter_queue_url"]),
        on_failure_queue_url=str(outputs["failed_batches_queue_url"]),
        api_url=outputs.get("api_url"),
        api_key=outputs.get("api_key"),
        write_key_parameter=outputs.get("segment_write_key_parameter"),
        profile_token_parameter=outputs.get("segment_profile_token_parameter"),
        function_name=outputs.get("update_traits_function_name"),
        batch=_stack_batch(outputs),
        user_state_table=_table_name(outputs.get("user_state_table")),
        refresh_queue_url=outputs.get("refresh_queue_url") or None,
        profile_api_rps=_number(
            (outputs.get("segment_profile_api_budget") or {}).get("requests_per_second")
        ),
    )


def _table_name(value: Any) -> str | None:
    """The table's name: Terraform's ``user_state_table`` output is ``{name, arn}``."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sandbox_batch(entry: Any) -> BatchTarget | None:
    if not isinstance(entry, dict) or not entry.get("bucket"):
        return None
    return BatchTarget(
        bucket=str(entry["bucket"]),
        users_key=str(entry.get("users_key") or "input/users.json"),
        function_name=str(entry["function_name"]),
        chunk_queue_url=entry.get("chunk_queue_url"),
        dead_letter_queue_url=entry.get("dead_letter_queue_url"),
        personalize_endpoint_url=entry.get("personalize_url"),
        lambda_endpoint_url=entry.get("lambda_url"),
    )


def _stack_batch(outputs: dict[str, Any]) -> BatchTarget | None:
    """The batch_traits outputs; they are null when enable_batch_traits is false."""
    bucket, function = outputs.get("batch_bucket"), outputs.get("batch_function_name")
    if not bucket or not function:
        return None
    return BatchTarget(
        bucket=str(bucket),
        users_key=str(outputs.get("batch_users_key") or "input/users.json"),
        function_name=str(function),
        chunk_queue_url=outputs.get("batch_chunk_queue_url"),
        dead_letter_queue_url=outputs.get("batch_dead_letter_queue_url"),
    )


def with_function_settings(target: Target) -> Target:
    """A deployed stack's Profile API and store settings, read from update_traits'
    environment: the table is the one the function uses (USER_STATE_TABLE), None when the
    deployed function has none."""
    if target.kind != "stack" or target.function_name is None:
        return target
    config = target.client("lambda").get_function_configuration(FunctionName=target.function_name)
    env = (config.get("Environment") or {}).get("Variables") or {}
    from dataclasses import replace

    return replace(
        target,
        profile_api_url=env.get("SEGMENT_PROFILE_API_URL") or "https://profiles.segment.com/v1",
        space_id=env.get("SEGMENT_SPACE_ID"),
        trait=env.get("RECOMMENDED_TRAIT") or DEFAULT_TRAIT,
        deployment=env.get("DEPLOYMENT_NAME"),
        metrics_namespace=env.get("METRICS_NAMESPACE") or "SegmentPersonalize",
        purchased_trait=env.get("PURCHASED_TRAIT") or DEFAULT_PURCHASED_TRAIT,
        user_state_table=env.get("USER_STATE_TABLE") or None,
        user_state_ttl_days=_ttl_days(env.get("USER_STATE_TTL_DAYS")),
    )


def _ttl_days(value: str | None) -> int:
    try:
        days = int(value) if value else 400
    except ValueError:
        return 400
    return days if 1 <= days <= 3650 else 400
