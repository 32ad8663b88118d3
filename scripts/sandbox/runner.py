"""Starts every part of the sandbox in order, reports progress, and stops all of it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.aws import apply_env, fake_aws_env, local_client
from devkit.loader import load_handler
from sandbox import resources as aws_resources
from sandbox.console import Console
from sandbox.gateway import ApiGateway, GatewayServer, HttpRequest, HttpResponse
from sandbox.lambda_api import LambdaApi
from sandbox.lambda_runtime import Function
from sandbox.poller import (
    BatchOutcome,
    EventSourceMapping,
    MappingSettings,
    Stream,
    decode_user_ids,
)
from sandbox.processes import Child, PortInUse, check_port_free, free_port, start_moto, wait_http
from sandbox.replay import Replayer, SegmentLibrary, endless
from sandbox.sqs_poller import SqsEventSource, SqsOutcome
from sandbox.statedir import StateDirLock
from sandbox.store_counts import sample as store_sample
from sandbox.totals import MonotonicCount, Totals, summary_lines, totals_line

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"
WRITE_KEY = "sandbox-write-key"
PROFILE_TOKEN = "sandbox-profile-token"  # noqa: S105 - a local emulator's token
SPACE_ID = "spa_sandbox"
RECOMMENDED_TRAIT = "recommended_products"
MOTO_START_TIMEOUT_S = 40.0
# Emulator request logs are trimmed past this many entries, so a long session stays small.
MAX_EMULATOR_LOG = 20_000
# The backfill's identifies (functions/batch_traits/backfill/writer.py) are not the traits
# sync's: the traits totals leave them out.
BATCH_MESSAGE_ID_PREFIX = "bt-"
# The refresh queue's visibility timeout: update_traits' timeout here, the least Lambda
# accepts for an SQS event source (Terraform sets 6 x the timeout).
REFRESH_VISIBILITY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Options:
    port: int = 8080
    api_key: str | None = None
    moto_port: int = 0
    personalize_port: int = 0
    segment_port: int = 0
    seed: int = 1
    items: int = 120
    users: int = 200
    history: int = 5000
    rate: float = 5.0
    events: int = 0
    shards: int = 1
    batch_size: int = 100
    batching_window: float = 1.0
    max_retries: int = 3
    retry_delay: float = 0.5
    poll_interval: float = 1.0
    starting_position: str = "TRIM_HORIZON"
    num_results: int | None = None
    use_filter: bool = True
    state_dir: Path = Path(".sandbox")
    prefix: str = "sandbox"
    log_requests: bool = True
    duplicate_rate: float = 0.0
    use_message_id: bool = False
    totals_interval: float = 5.0
    batch: bool = True
    chunk_bytes: int = 16384
    chunk_visibility_timeout: int = 10
    user_state: str = "on"
    min_refresh_interval: int = 30
    profile_api_share: float | None = None  # None: the split in _function_env


class StartError(Exception):
    """A start-up failure with a message for the user (no stack trace)."""


class IdentifyCounter:
    """Counts the identify calls carrying the recommended trait that reached the Segment
    emulator since the last call (invocations run one at a time, so the delta is theirs)."""

    def __init__(self, segment: Any, trait: str) -> None:
        self._segment = segment
        self._trait = trait
        self._cursor = len(segment.requests)

    def take(self) -> int:
        records = self._segment.requests
        if len(records) < self._cursor:  # someone reset the emulator's stats
            self._cursor = 0
        new = records[self._cursor :]
        self._cursor += len(new)
        count = 0
        for record in new:
            if record.operation != "batch" or record.status != 200:
                continue
            body = record.body if isinstance(record.body, dict) else {}
            for message in body.get("batch") or []:
                if (
                    isinstance(message, dict)
                    and message.get("type") == "identify"
                    and isinstance(message.get("traits"), dict)
                    and self._trait in message["traits"]
                    and not str(message.get("messageId")).startswith(BATCH_MESSAGE_ID_PREFIX)
                ):
                    count += 1
        if self._cursor > MAX_EMULATOR_LOG:
            self._segment.reset_stats()
            self._cursor = 0
        return count


def _aws_env(moto_url: str, personalize_url: str) -> dict[str, str]:
    """SDK settings for this process (our clients and the handlers): fake credentials, and
    every endpoint on 127.0.0.1 so nothing can reach a real AWS account."""
    moto = dict.fromkeys(("", "kinesis", "ssm", "sqs", "s3", "dynamodb"), moto_url)
    personalize = dict.fromkeys(
        ("personalize", "personalize-runtime", "personalize-events"), personalize_url
    )
    return fake_aws_env(REGION, {**moto, **personalize})


def _short(sequence_number: str) -> str:
    return sequence_number if len(sequence_number) <= 12 else "..." + sequence_number[-8:]


class Sandbox:
    def __init__(self, options: Options, console: Console) -> None:
        self.options = options
        self.console = console
        self.state_dir = options.state_dir
        self.api_key = options.api_key or secrets.token_urlsafe(30)
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self.children: list[Child] = []
        self.info: dict[str, Any] = {}
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.totals = Totals()
        self._profile_requests = MonotonicCount()
        self._lock = StateDirLock(self.state_dir)
        self._summary_sources: dict[str, Callable[[], dict[str, Any] | None]] = {}
        self._sample: Callable[[], None] = lambda: None  # reads the gauges once all runs
        self._backfill: dict[str, int] = {}  # counts from batch_traits' log lines

    # -- start -------------------------------------------------------------------------------

    def _step(self, text: str) -> None:
        self.console.line(f"  {text}")

    def _on_stop(self, name: str, action: Callable[[], None]) -> None:
        self._cleanups.append((name, action))

    def start(self) -> None:
        from emulators import data
        from emulators.personalize import PersonalizeEmulator
        from emulators.segment import SegmentEmulator

        opts = self.options
        # Every fixed port is checked first, so a taken one (another sandbox's, say) fails
        # before anything starts or any file is touched.
        check_port_free("API gateway, --port", HOST, opts.port)
        check_port_free("moto server, --moto-port", HOST, opts.moto_port)
        check_port_free("Personalize emulator, --personalize-port", HOST, opts.personalize_port)
        check_port_free("Segment emulator, --segment-port", HOST, opts.segment_port)
        # Then the state folder: one that a live sandbox holds is refused, untouched.
        self._lock.acquire()
        self._on_stop("state folder lock", self._lock.release)
        self._on_stop("state file", self._mark_stopped)
        (self.state_dir / "state.json").unlink(missing_ok=True)
        self.console.line(f"sandbox: starting (logs and state in {self.state_dir}/)")

        # Restored last, once nothing can call a handler any more.
        self._on_stop("handler log", self.console.restore_stdout)
        self._on_stop("summary", self._print_summary)
        # Bound now (served later): the API's port is ours from here on.
        try:
            server = GatewayServer(HOST, opts.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse("API gateway, --port", HOST, opts.port) from None
            raise
        self._on_stop("API gateway", server.stop)

        # Started first, moto's server boots while the emulators train.
        moto_port = opts.moto_port or free_port(HOST)
        moto_url = f"http://{HOST}:{moto_port}"
        t0 = time.monotonic()
        moto = start_moto(HOST, moto_port, self.state_dir / "moto.log")
        self.children.append(moto)
        self._on_stop("moto server", moto.stop)
        self._step(
            f"moto server (Kinesis, SSM, SQS, DynamoDB) starting: pid {moto.pid}, port {moto_port}"
        )

        catalogue = data.catalogue(opts.seed, opts.items)
        people = data.users(opts.seed, opts.users)
        history = data.interactions(opts.seed, catalogue, people, opts.history)
        self._step(
            f"sample data (seed {opts.seed}): {len(catalogue)} products, {len(people)} users, "
            f"{len(history)} past interactions"
        )

        t1 = time.monotonic()
        personalize = PersonalizeEmulator(
            interactions=history,
            items=catalogue,
            seed=opts.seed,
            host=HOST,
            port=opts.personalize_port,
            region=REGION,
            account=ACCOUNT,
            s3_endpoint_url=moto_url,  # batch inference jobs read and write moto's S3
        )
        personalize.start()
        self._on_stop("Personalize emulator", personalize.stop)
        self._step(
            f"Personalize emulator trained: {personalize.url} ({time.monotonic() - t1:.1f} s)"
        )

        segment = SegmentEmulator(
            write_key=WRITE_KEY,
            profile_token=PROFILE_TOKEN,
            space_id=SPACE_ID,
            db_path=None,
            seed=opts.seed,
            host=HOST,
            port=opts.segment_port,
        )
        purchases: dict[str, list[str]] = {}
        for user, item, event, _ in history:
            if event == "Order Completed":
                purchases.setdefault(user, []).append(item)
        for user, items in purchases.items():
            segment.set_traits(user, {"purchased_products": items})
        segment.start()
        self._on_stop("Segment emulator", segment.close)
        self._step(f"Segment emulator: {segment.url} ({len(purchases)} profiles with purchases)")

        wait_http(f"{moto_url}/moto-api/", moto, MOTO_START_TIMEOUT_S)
        self._step(f"moto server ready: {moto_url} ({time.monotonic() - t0:.1f} s)")

        apply_env(_aws_env(moto_url, personalize.url))
        kinesis = local_client("kinesis", moto_url, REGION)
        ssm = local_client("ssm", moto_url, REGION)
        sqs = local_client("sqs", moto_url, REGION)
        made = aws_resources.create(
            kinesis=kinesis,
            ssm=ssm,
            sqs=sqs,
            prefix=opts.prefix,
            shards=opts.shards,
            write_key=WRITE_KEY,
            profile_token=PROFILE_TOKEN,
        )
        self._step(
            f"created in moto: stream {made.stream_name} ({made.shards} shard"
            f"{'s' if made.shards > 1 else ''}), SSM SecureStrings {made.write_key_parameter}, "
            f"{made.profile_token_parameter} and {made.log_hash_key_parameter}, queues "
            "dead-letter and on-failure"
        )
        store: aws_resources.UserStateResources | None = None
        dynamodb = local_client("dynamodb", moto_url, REGION)
        if opts.user_state == "on":
            store = aws_resources.create_user_state(
                dynamodb=dynamodb,
                sqs=sqs,
                prefix=opts.prefix,
                dead_letter_queue_arn=made.dead_letter_queue_arn,
                visibility_timeout_s=REFRESH_VISIBILITY_TIMEOUT_S,
            )
            self._step(
                f"user-state store: DynamoDB table {store.table_name} (TTL on expires_at), "
                f"refresh queue {store.refresh_queue_url.rsplit('/', 1)[-1]} (DLQ after "
                f"{aws_resources.REFRESH_MAX_RECEIVE_COUNT} receives), "
                f"MIN_REFRESH_INTERVAL_S {opts.min_refresh_interval}"
            )
        else:
            why = (
                "--user-state off"
                if opts.user_state == "off"
                else ("update_traits in this checkout does not read USER_STATE_TABLE")
            )
            self._step(f"user-state store off ({why}): the API reads the Profile API")

        destination = segment.connect_kinesis(
            local_client("kinesis", moto_url, REGION),
            made.stream_name,
            use_message_id=opts.use_message_id,
            duplicate_rate=opts.duplicate_rate,
        )
        self._summary_sources["destination"] = lambda: {
            **destination.stats(),
            "left_at_stop": destination.left_at_stop,
        }
        key = "messageId" if opts.use_message_id else "userId || anonymousId"
        self._step(
            f"Segment emulator -> Amazon Kinesis destination: stream {made.stream_name}, "
            f"partition key {key}, PutRecords batches, duplicate rate {opts.duplicate_rate:g}"
        )

        os.environ.update(self._function_env(personalize, segment, made, store))
        handlers_log = self.state_dir / "handlers.log"
        self.console.capture_stdout(handlers_log, on_line=self._handler_log_line)
        try:
            reco, traits = (
                Function(
                    f"{opts.prefix}-{folder.replace('_', '-')}",
                    load_handler(folder, ROOT / "functions", name=f"sandbox_{folder}_app"),
                    REGION,
                    ACCOUNT,
                    timeout_s=timeout_s,
                )
                for folder, timeout_s in (("recommendations", 10), ("update_traits", 60))
            )
        except (OSError, ImportError) as exc:
            raise StartError(f"cannot load a handler: {exc}") from exc
        self._step(f"handlers loaded, unmodified, from functions/ (their logs: {handlers_log})")

        server.gateway = ApiGateway(
            lambda event, request_id: reco.invoke(event, request_id),
            self.api_key,
            account=ACCOUNT,
            on_request=self._log_request if opts.log_requests else None,
        )
        server.start()
        api_url = f"http://{HOST}:{server.port}"
        self._step(
            f"API gateway: {api_url} (GET /recommendations, GET /related-items, POST /rankings;"
            " x-api-key required)"
        )

        identifies = IdentifyCounter(segment, RECOMMENDED_TRAIT)
        stream = Stream(
            name=made.stream_name,
            arn=made.stream_arn,
            region=REGION,
            invoke_identity_arn=f"arn:aws:iam::{ACCOUNT}:role/{opts.prefix}-update-traits",
        )
        settings = MappingSettings(
            batch_size=opts.batch_size,
            batching_window_s=opts.batching_window,
            max_retries=opts.max_retries,
            starting_position=opts.starting_position,
            poll_interval_s=opts.poll_interval,
            retry_base_s=opts.retry_delay,
        )

        def send_on_failure(record: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=made.on_failure_queue_url, MessageBody=json.dumps(record))

        def on_batch(outcome: BatchOutcome) -> None:
            sent = identifies.take()
            done = (
                len(outcome.records)
                if outcome.gave_up
                else (len(outcome.records) - outcome.failed_records)
            )
            self.totals.add(
                records_out=done,
                invocations=1,
                identifies=sent,
                failed_records=outcome.failed_records,
                on_failure=1 if outcome.gave_up else 0,
            )
            self._log_batch(outcome, sent, settings)
            if len(personalize.requests) > MAX_EMULATOR_LOG:
                personalize.reset_stats()

        mapping = EventSourceMapping(
            kinesis,
            stream,
            traits.invoke,
            traits.arn,
            send_on_failure,
            settings,
            on_batch=on_batch,
        )
        mapping.start()
        self._on_stop("event-source poller", mapping.stop)
        retries = "unbounded retries" if opts.max_retries == -1 else f"{opts.max_retries} retries"
        self._step(
            f"event-source poller: {len(mapping.pollers)} shard(s), batch size {opts.batch_size}, "
            f"window {opts.batching_window:g} s, {retries}, {opts.starting_position}, "
            f"partial batch responses on, on-failure -> SQS"
        )

        refresh: SqsEventSource | None = None
        if store is not None:
            refresh = SqsEventSource(
                sqs=local_client("sqs", moto_url, REGION),
                queue_url=store.refresh_queue_url,
                queue_arn=store.refresh_queue_arn,
                region=REGION,
                invoke=traits.invoke,
                batch_size=10,  # Terraform's refresh mapping
                on_batch=self._log_refresh_batch,
            )
            refresh.start()
            self._on_stop("refresh-queue poller", refresh.stop)
            # moto's server keeps a message sent with DelaySeconds invisible until then, as
            # SQS does (tests/integration/test_sandbox_user_state.py): the poller need not.
            self._step(
                f"refresh-queue poller: {store.refresh_queue_url.rsplit('/', 1)[-1]} -> "
                f"{traits.name} (batch size 10, partial batch responses on)"
            )

        batch_info = (
            self._start_batch(moto_url, personalize, people, reco, traits) if opts.batch else None
        )

        def sample() -> None:
            counts = None
            if store is not None and refresh is not None:
                try:
                    counts = store_sample(
                        dynamodb,
                        sqs,
                        store.table_name,
                        store.refresh_queue_url,
                        trailing=refresh.stats.deleted,
                    )
                except Exception:  # moto going away at stop: keep the last counts
                    counts = self.totals.snapshot().store
            self.totals.set(
                records_in=destination.delivered,
                profile_requests=self._profile_requests.update(segment.counters.get("profile", 0)),
                lag_s=max((p.lag_s() for p in mapping.pollers), default=0.0),
                store=counts,
            )

        self._sample = sample  # read by the totals line and the summary
        # Once more at stop while moto still runs: the summary's store counters are read
        # after moto's server has gone (the sample then keeps these).
        self._on_stop("last sample", sample)
        if opts.totals_interval > 0:
            ticker = threading.Event()
            totals_thread = threading.Thread(
                target=self._totals_loop, args=(ticker, opts.totals_interval), daemon=True
            )
            totals_thread.start()

            def stop_totals() -> None:
                ticker.set()
                totals_thread.join(timeout=2)

            self._on_stop("totals", stop_totals)

        if opts.rate > 0:
            # The sandbox is a Segment source like any app: segment-analytics-python sends
            # the generated events to the tracking URL; nothing writes to the stream directly.
            library = SegmentLibrary(segment.url, WRITE_KEY)
            replayer = Replayer(
                messages=endless(
                    lambda n: data.segment_events(opts.seed + n, catalogue, people, n=1000),
                    opts.events,
                ),
                rate=opts.rate,
                send=library,
            )
            thread = threading.Thread(target=replayer.run, name="replay", daemon=True)
            thread.start()
            left: dict[str, int] = {"left": 0}

            def stop_replay() -> None:
                replayer.stop.set()
                thread.join(timeout=5)
                left["left"] = library.close()

            self._on_stop("replay", stop_replay)
            self._summary_sources["replay"] = lambda: {
                "sent": replayer.stats.sent,
                "refused": replayer.stats.refused,
                "failed": library.failed_messages,
                "left": left["left"],
            }
            total = f"{opts.events} events" if opts.events else "without end"
            self._step(
                f"replaying live Segment events with segment-analytics-python (gzip on) to "
                f"{segment.url}: {opts.rate:g}/s, {total}"
            )
        else:
            self._step("replay off (--rate 0): send events with any Segment library (below)")

        example_user = next(iter(purchases), people[0])
        example_item = str(catalogue[0]["sku"])
        self.info = {
            "running": True,
            "pid": os.getpid(),
            "children": [{"name": c.name, "pid": c.pid, "pgid": c.pid} for c in self.children],
            "api_url": api_url,
            "api_key": self.api_key,
            "moto_url": moto_url,
            "personalize_url": personalize.url,
            "segment_url": segment.url,
            "ports": {
                "api": server.port,
                "moto": moto_port,
                "personalize": int(personalize.url.rsplit(":", 1)[1]),
                "segment": int(segment.url.rsplit(":", 1)[1]),
            },
            "region": REGION,
            "stream_name": made.stream_name,
            "stream_arn": made.stream_arn,
            "dead_letter_queue_url": made.dead_letter_queue_url,
            "on_failure_queue_url": made.on_failure_queue_url,
            # None without the store (bundle seed and smoke then say so).
            "user_state_table": store.table_name if store is not None else None,
            "refresh_queue_url": store.refresh_queue_url if store is not None else None,
            "campaign_arn": personalize.campaign_arn,
            "related_items_arn": personalize.related_items_campaign_arn,
            "ranking_campaign_arn": personalize.ranking_campaign_arn,
            "filter_arn": personalize.purchase_filter_arn if opts.use_filter else None,
            "example_user": example_user,
            "example_item": example_item,
            # Public (scripts/sandbox/README.md): what a Segment library (or an operator) points at.
            "segment": {
                "tracking_url": segment.url,
                "write_key": WRITE_KEY,
                "controls_url": f"{segment.url}/_emulator/controls",
                "destination_url": f"{segment.url}/_emulator/destination",
                "profile_api_url": f"{segment.url}/v1",
                "space_id": SPACE_ID,
                # What the budget allows this deployment (bundle seed's default rate).
                "profile_api_rps": self._profile_budget(segment),
            },
            "personalize": {
                "controls_url": f"{personalize.url}/_emulator/controls",
            },
        }
        if batch_info is not None:
            self.info["batch"] = batch_info
        self._write_state()
        self._lock.describe(api_url=api_url)
        self._print_ready(api_url, segment.url, personalize.url, example_user, example_item)
        self.ready_at = time.monotonic()

    @staticmethod
    def _profile_budget(segment: Any) -> float | None:
        """Terraform's default segment.profile_api_rps: 90% of the space's limit (10% left
        for jitter), or None when the emulator enforces none."""
        limit = segment.rate_limits.limits.get("profile")
        return round(limit.rate * 0.9, 3) if limit is not None else None

    def _function_env(
        self,
        personalize: Any,
        segment: Any,
        made: Any,
        store: aws_resources.UserStateResources | None = None,
    ) -> dict[str, str]:
        """The same variables Terraform gives the functions (their READMEs' settings tables)."""
        env = {
            "PERSONALIZE_CAMPAIGN_ARN": personalize.campaign_arn,
            "PERSONALIZE_TRACKING_ID": personalize.tracking_id,
            "SEGMENT_WRITE_KEY_PARAMETER": made.write_key_parameter,
            "SEGMENT_PROFILE_TOKEN_PARAMETER": made.profile_token_parameter,
            # User ids in both functions' logs as HMAC pseudonyms under this run's key.
            "LOG_HASH_KEY_PARAMETER": made.log_hash_key_parameter,
            "PERSONALIZE_RELATED_ITEMS_ARN": personalize.related_items_campaign_arn,
            # Every v2 capability, so that each route and option answers (the curl lines in
            # functions/recommendations/README.md).
            "PERSONALIZE_RANKING_CAMPAIGN_ARN": personalize.ranking_campaign_arn,
            "PERSONALIZE_FILTERS": json.dumps(
                {
                    "category": {
                        "arn": personalize.category_filter_arn,
                        "parameters": ["CATEGORIES"],
                    },
                    "exclude-purchased": personalize.purchase_filter_arn,
                }
            ),
            "ITEM_METADATA_COLUMNS": "NAME,CATEGORY,PRICE",
            # A promotion on every GET: a fifth of the list from the Books category.
            "PERSONALIZE_PROMOTIONS": json.dumps(
                [
                    {
                        "name": "books",
                        "percentPromotedItems": 20,
                        "filter": "category",
                        "filterValues": {"CATEGORIES": ["Books"]},
                    }
                ]
            ),
            "SEGMENT_SPACE_ID": SPACE_ID,
            "SEGMENT_API_URL": segment.url + "/v1",
            "SEGMENT_PROFILE_API_URL": segment.url + "/v1",
            "DEAD_LETTER_QUEUE_URL": made.dead_letter_queue_url,
        }
        if store is not None:
            # Both functions (they share this process's environment): update_traits reads
            # and writes the store; the API reads it instead of the Profile API.
            env["USER_STATE_TABLE"] = store.table_name
            env["REFRESH_QUEUE_URL"] = store.refresh_queue_url
            env["MIN_REFRESH_INTERVAL_S"] = str(self.options.min_refresh_interval)
        else:
            for name in ("USER_STATE_TABLE", "REFRESH_QUEUE_URL", "MIN_REFRESH_INTERVAL_S"):
                os.environ.pop(name, None)
        budget = self._profile_budget(segment)
        if budget is not None:
            # One container of each function: 90% of the space's limit (Terraform's default
            # budget leaves 10% for jitter), split as Terraform splits it over the functions'
            # maximum concurrency: in two, or, with the store, all of it to update_traits
            # (the API reads no Profile API; a capped user's read is the rare exception, and
            # the functions share this variable here).
            share = budget if store is not None else budget / 2
            env["SEGMENT_PROFILE_API_RPS"] = f"{share:g}"
        if self.options.profile_api_share is not None:
            # A deployment's share per container (terraform's segment_profile_api_budget
            # output), e.g. for scripts/bench/sustained.py.
            env["SEGMENT_PROFILE_API_RPS"] = f"{self.options.profile_api_share:g}"
        if self.options.use_filter:
            env["PERSONALIZE_FILTER_ARN"] = personalize.purchase_filter_arn
        else:
            os.environ.pop("PERSONALIZE_FILTER_ARN", None)
        if self.options.num_results is not None:
            env["NUM_RESULTS"] = str(self.options.num_results)
        return env

    def _write_state(self) -> None:
        path = self.state_dir / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def _print_ready(
        self, api_url: str, segment_url: str, personalize_url: str, user: str, item: str
    ) -> None:
        c = self.console
        key = self.api_key
        host = segment_url.removeprefix("http://")
        c.line("")
        c.line(f"Sandbox ready in {time.monotonic() - self.started_at:.1f} s.")
        c.line(f"  API URL    {api_url}")
        c.line(f"  API key    {key}")
        c.line(
            f"  Try        curl -s -H 'x-api-key: {key}' "
            f"'{api_url}/recommendations?userId={user}&numResults=5'"
        )
        c.line(
            f"  Related    curl -s -H 'x-api-key: {key}' "
            f"'{api_url}/related-items?itemId={item}&userId={user}&numResults=5'"
        )
        c.line(
            f"  Ranking    curl -s -H 'x-api-key: {key}' -H 'Content-Type: application/json' "
            f'-d \'{{"userId": "{user}", "itemIds": ["{item}", "SKU-0002"]}}\' '
            f"'{api_url}/rankings'"
        )
        c.line(
            f"  Options    curl -s -H 'x-api-key: {key}' '{api_url}/recommendations?userId={user}"
            "&numResults=5&filter=category&filterValues.CATEGORIES=Books,Toys"
            "&context.DEVICE=mobile&includeMetadata=true'"
        )
        c.line(f"  Profile    curl -s {segment_url}/_emulator/profiles/{user}")
        c.line(
            f"             (a user's Segment traits: {RECOMMENDED_TRAIT} appears once one of "
            f"their events has been processed)"
        )
        c.line("")
        c.line(f"  Segment    tracking URL {segment_url} (API under /v1), write key {WRITE_KEY}")
        c.line(
            "             events sent there reach the stream as Segment's Amazon Kinesis "
            "destination delivers them"
        )
        c.line("  Python     pip install segment-analytics-python")
        c.line(
            f"             from segment import analytics; analytics.write_key = '{WRITE_KEY}'; "
            f"analytics.host = '{segment_url}'"
        )
        c.line(
            f"             analytics.track('{user}', 'Order Completed', "
            f"{{'products': [{{'sku': '{item}'}}]}}); analytics.flush()"
        )
        c.line(
            "  JS         AnalyticsBrowser.load({ writeKey: '"
            + WRITE_KEY
            + "', cdnSettings: { integrations: { 'Segment.io': { apiKey: '"
            + WRITE_KEY
            + f"', apiHost: '{host}/v1', protocol: 'http' }} }} }} }})"
        )
        c.line(
            f"  Controls   Segment {segment_url}/_emulator/controls, "
            f"Personalize {personalize_url}/_emulator/controls"
        )
        c.line(
            f"             (faults, latency; Kinesis duplicates: "
            f"{segment_url}/_emulator/destination)"
        )
        c.line(
            f"  Queues     on-failure {self.info['on_failure_queue_url']}\n"
            f"             dead-letter {self.info['dead_letter_queue_url']}"
        )
        if self.info.get("user_state_table"):
            c.line(
                f"  Store      table {self.info['user_state_table']}, refresh queue "
                f"{self.info['refresh_queue_url']}"
            )
            c.line("             scripts/bundle seed --sandbox --users-file users.jsonl")
        c.line(
            f"  Logs       {self.state_dir}/handlers.log (handlers), {self.state_dir}/moto.log; "
            f"{self.state_dir}/state.json (URLs, keys)"
        )
        if "batch" in self.info:
            batch = self.info["batch"]
            c.line(
                f"  Backfill   scripts/bundle backfill start --sandbox   (every one of the "
                f"{batch['users']} users in s3://{batch['bucket']}/{batch['users_key']})"
            )
            c.line("             scripts/bundle backfill status --sandbox --wait")
        c.line("  Stop       Ctrl-C")
        c.line("")

    # -- running -----------------------------------------------------------------------------

    def dead_child(self) -> str | None:
        """A message if a child process has exited on its own (the sandbox cannot go on)."""
        for child in self.children:
            if not child.alive():
                return (
                    f"{child.name} (pid {child.pid}) exited with code {child.proc.returncode}; "
                    f"see {child.log_path}"
                )
        return None

    def _totals_loop(self, stop: threading.Event, interval_s: float) -> None:
        before, at = self.totals.snapshot(), time.monotonic()
        while not stop.wait(interval_s):
            self._sample()
            now, moment = self.totals.snapshot(), time.monotonic()
            self.console.event(totals_line(before, now, moment - at))
            before, at = now, moment

    def _start_batch(
        self, moto_url: str, personalize: Any, people: list[str], *others: Function
    ) -> dict[str, Any] | None:
        """The batch_traits module on moto: bucket, chunk queue + DLQ, S3 -> SQS notification,
        the function behind a local SQS event source mapping, and the Lambda Invoke API."""
        opts = self.options
        if not (ROOT / "functions" / "batch_traits" / "app.py").is_file():
            self._step("batch backfill off: functions/batch_traits is not in this checkout")
            return None
        s3, sqs = local_client("s3", moto_url, REGION), local_client("sqs", moto_url, REGION)
        made = aws_resources.create_batch(
            s3=s3,
            sqs=sqs,
            prefix=opts.prefix,
            account=ACCOUNT,
            user_ids=people,
            visibility_timeout_s=opts.chunk_visibility_timeout,
        )
        os.environ.update(
            {
                # What terraform/modules/batch_traits gives the function.
                "BATCH_BUCKET": made.bucket,
                "BATCH_USERS_KEY": made.users_key,
                "BATCH_ROLE_ARN": made.role_arn,
                "CHUNK_QUEUE_URL": made.chunk_queue_url,
                "CHUNK_BYTES": str(opts.chunk_bytes),
                "SEGMENT_EVENTS_PER_S": "500",
                "MAX_RECEIVE_COUNT": str(aws_resources.CHUNK_MAX_RECEIVE_COUNT),
                "DEPLOYMENT_NAME": opts.prefix,
            }
        )
        try:
            function = Function(
                f"{opts.prefix}-batch-traits",
                load_handler("batch_traits", ROOT / "functions", name="sandbox_batch_traits_app"),
                REGION,
                ACCOUNT,
                timeout_s=60,
            )
        except (OSError, ImportError) as exc:
            raise StartError(f"cannot load a handler: {exc}") from exc
        mapping = SqsEventSource(
            sqs=local_client("sqs", moto_url, REGION),
            queue_url=made.chunk_queue_url,
            queue_arn=made.chunk_queue_arn,
            region=REGION,
            invoke=function.invoke,
            batch_size=1,
            on_batch=self._log_chunk_batch,
        )
        mapping.start()
        self._on_stop("chunk-queue poller", mapping.stop)
        api = LambdaApi(HOST, 0, {f.name: f.invoke for f in (function, *others)})
        api.start()
        self._on_stop("Lambda Invoke API", api.stop)
        self._step(
            f"batch backfill: bucket {made.bucket} ({made.users} users in {made.users_key}), "
            f"output/*.out -> SQS {made.chunk_queue_url.rsplit('/', 1)[-1]} (DLQ after "
            f"{aws_resources.CHUNK_MAX_RECEIVE_COUNT} receives) -> {function.name}; "
            f"Lambda Invoke API {api.url}"
        )
        return {
            "bucket": made.bucket,
            "users_key": made.users_key,
            "users": made.users,
            "function_name": function.name,
            "chunk_queue_url": made.chunk_queue_url,
            "dead_letter_queue_url": made.dead_letter_queue_url,
            "role_arn": made.role_arn,
            "personalize_url": personalize.url,
            "lambda_url": api.url,
            "chunk_bytes": opts.chunk_bytes,
        }

    def _log_refresh_batch(self, outcome: SqsOutcome) -> None:
        text = (
            f"refresh records={outcome.records} failures={outcome.failed} "
            f"({outcome.duration_s:.2f} s)"
        )
        if outcome.failed or outcome.error:
            why = f": {outcome.error}" if outcome.error else ""
            text += f" -> left on the queue for a retry{why}"
        self.console.event(text)

    def _log_chunk_batch(self, outcome: SqsOutcome) -> None:
        if outcome.failed or outcome.error:
            why = f": {outcome.error}" if outcome.error else ""
            self.console.event(
                f"chunks records={outcome.records} failures={outcome.failed} "
                f"({outcome.duration_s:.2f} s) -> left on the queue for a retry{why}"
            )

    def _batch_log_line(self, entry: dict[str, Any]) -> None:
        message = entry.get("message")
        job = entry.get("job")
        counts = self._backfill
        if message in ("batch inference job started", "chunk failed"):
            counts[str(message)] = counts.get(str(message), 0) + 1
        if message == "chunk processed" and entry.get("status") == "done":
            for key in ("chunks", "written", "failed_error_line", "undecodable", "segment_failed"):
                value = 1 if key == "chunks" else entry.get(key)
                counts[key] = counts.get(key, 0) + (value if isinstance(value, int) else 0)
        if message == "batch inference job started":
            self.console.event(f"backfill job {job} started")
        elif message == "output file split":
            self.console.event(f"backfill {job}: output split into {entry.get('chunks')} chunks")
        elif message == "chunk processed":
            text = (
                f"backfill {job} chunk {entry.get('index')}: {entry.get('status')}, "
                f"lines {entry.get('lines')}, written {entry.get('written')}, "
                f"error lines {entry.get('failed_error_line')}"
            )
            if entry.get("report"):
                text += f"; report written (scripts/bundle backfill report {job} --sandbox)"
            self.console.event(text)
        elif message == "chunk failed":
            last = ", last receive: to the dead-letter queue" if entry.get("last") else ""
            self.console.event(
                f"backfill {job} chunk {entry.get('index')} failed: {entry.get('reason')} "
                f"(receive {entry.get('receives')}{last})"
            )

    def _handler_log_line(self, line: str) -> None:
        """The handlers' log lines as CloudWatch Logs would get them: a dead-lettered record
        is shown with its reason and sequence number; the backfill's steps are shown."""
        if '"service": "batch_traits"' in line or '"service":"batch_traits"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                return
            if isinstance(entry, dict):
                self._batch_log_line(entry)
            return
        if '"record dead-lettered"' not in line:
            return
        entry = json.loads(line)
        if not isinstance(entry, dict) or entry.get("message") != "record dead-lettered":
            return
        reason = str(entry.get("reason"))
        self.totals.dead_letter(reason)
        queue = str(self.info.get("dead_letter_queue_url", "the dead-letter queue"))
        self.console.event(
            f"dead-letter {entry.get('shardId')} sequence number {entry.get('sequenceNumber')}: "
            f"{reason} -> {queue.rsplit('/', 1)[-1]}"
        )

    def _print_summary(self) -> None:
        if self.ready_at is None:
            return
        self._sample()
        for line in summary_lines(
            self.totals.snapshot(),
            time.monotonic() - self.ready_at,
            replay=self._source("replay"),
            destination=self._source("destination"),
            api_statuses=self.totals.api_statuses,
            dead_letter_reasons=self.totals.dead_letter_reasons,
        ):
            self.console.line(line)
        if self._backfill:  # only when the backfill ran
            b = self._backfill
            failed = sum(
                b.get(k, 0) for k in ("failed_error_line", "undecodable", "segment_failed")
            )
            self.console.line(
                f"  backfill  {b.get('batch inference job started', 0)} jobs started, "
                f"{b.get('chunks', 0)} chunks done, {b.get('written', 0)} users written, "
                f"{failed} failed, {b.get('chunk failed', 0)} chunk failures (retried or "
                "dead-lettered)"
            )

    def _source(self, name: str) -> dict[str, Any] | None:
        source = self._summary_sources.get(name)
        return source() if source is not None else None

    def _log_request(self, request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        self.totals.api_request(response.status)
        self.console.event(
            f"api   {request.method} {request.target} -> {response.status} "
            f"({seconds * 1000:.0f} ms)"
        )

    def _log_batch(self, outcome: BatchOutcome, identifies: int, settings: MappingSettings) -> None:
        users = len(decode_user_ids(outcome.records))
        text = (
            f"batch {outcome.shard_id} records={len(outcome.records)} users={users} "
            f"identifies={identifies} failures={outcome.failed_records} "
            f"({outcome.duration_s:.2f} s)"
        )
        if outcome.gave_up:
            text += (
                f" retries exhausted after {outcome.attempt} invocations: "
                "on-failure record sent, batch skipped"
            )
        elif outcome.retry_number is not None and outcome.failed_from is not None:
            limit = "unbounded" if settings.max_retries == -1 else str(settings.max_retries)
            why = f", {outcome.error}" if outcome.error else ""
            text += (
                f" -> retry {outcome.retry_number}/{limit} from sequence number "
                f"{_short(outcome.failed_from)}{why}"
            )
        self.console.event(text)

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops everything started, newest first; each step bounded, none skipped."""
        while self._cleanups:
            name, action = self._cleanups.pop()
            try:
                action()
            except Exception as exc:
                self.console.line(f"  (stopping {name}: {exc})")

    def _mark_stopped(self) -> None:
        """state.json says the sandbox is gone (written while the folder is still ours)."""
        if self.info:
            self.info["running"] = False
            with contextlib.suppress(OSError):
                self._write_state()
