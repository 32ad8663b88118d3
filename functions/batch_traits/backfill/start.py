"""The start action: a batch inference job on the campaign's solution version, reading a
users file of the bucket and writing under ``output/<job>/``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backfill import chunks
from backfill.settings import Settings, users_key
from common.config import ConfigError
from common.settings import PERSONALIZE_CAMPAIGN_ARN


class StartError(Exception):
    """The job cannot be started as asked (a clear message for the operator)."""


def default_job_name(deployment: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"{deployment[: 63 - len(stamp) - 1]}-{stamp}"


def start(event: Mapping[str, Any], settings: Settings, personalize: Any) -> dict[str, str]:
    job = event.get("job_name")
    if job is None:
        job = default_job_name(settings.deployment)
    if not isinstance(job, str) or not chunks.JOB_NAME.match(job):
        raise StartError(
            "job_name must be 1..63 letters, digits, _ or - (starting with a letter or digit)"
        )
    prefix = f"{settings.deployment}-"
    if not job.startswith(prefix):
        # The function's role may start only jobs named so (terraform/modules/batch_traits).
        raise StartError(f"job_name must start with {prefix!r} (the deployment's name_prefix)")
    key = event.get("users_key", settings.users_key)
    try:
        key = users_key(key if isinstance(key, str) else "", "users_key")
    except ConfigError as exc:
        raise StartError(f"users_key {exc.reason}") from None
    if ":recommender/" in settings.campaign_arn:
        raise StartError(
            f"{PERSONALIZE_CAMPAIGN_ARN.name} is a recommender: batch inference needs a campaign "
            "(its solution version)"
        )
    campaign = personalize.describe_campaign(campaignArn=settings.campaign_arn)["campaign"]
    solution_version = campaign.get("solutionVersionArn")
    if not isinstance(solution_version, str) or not solution_version:
        raise StartError("the campaign has no solution version")
    source: dict[str, str] = {"path": f"s3://{settings.bucket}/{key}"}
    destination: dict[str, str] = {"path": f"s3://{settings.bucket}/output/{job}/"}
    if settings.kms_key_arn is not None:
        source["kmsKeyArn"] = settings.kms_key_arn
        destination["kmsKeyArn"] = settings.kms_key_arn
    request: dict[str, Any] = {
        "jobName": job,
        "solutionVersionArn": solution_version,
        "numResults": settings.num_results,
        "jobInput": {"s3DataSource": source},
        "jobOutput": {"s3DataDestination": destination},
        "roleArn": settings.role_arn,
    }
    if settings.filter_arn is not None:
        request["filterArn"] = settings.filter_arn
    response = personalize.create_batch_inference_job(**request)
    return {
        "jobName": job,
        "jobArn": str(response["batchInferenceJobArn"]),
        "usersKey": key,
        "outputPath": destination["path"],
    }
