"""A fake AWS environment for the SDK, and moto's server on a free loopback port.

Endpoints are set through the SDK's own variables (``AWS_ENDPOINT_URL_<SERVICE>``), as the
functions' configuration does; no developer config or credentials can leak in.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping

REGION = "us-east-1"
# Variables that would let a developer's own AWS setup reach the SDK: always removed.
UNSET = ("AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


def fake_aws_env(
    region: str = REGION,
    endpoints: Mapping[str, str] | None = None,
    *,
    credential: str = "testing",
) -> dict[str, str]:
    """Dummy credentials, ``region``, no config files, no instance metadata, and
    ``AWS_ENDPOINT_URL_<SERVICE>`` for each ``endpoints`` entry (service ids as botocore
    spells them, e.g. ``personalize-runtime``; the key ``""`` sets ``AWS_ENDPOINT_URL``)."""
    env = {
        "AWS_ACCESS_KEY_ID": credential,
        "AWS_SECRET_ACCESS_KEY": credential,
        "AWS_SESSION_TOKEN": credential,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for service, url in (endpoints or {}).items():
        suffix = f"_{service.upper().replace('-', '_')}" if service else ""
        env[f"AWS_ENDPOINT_URL{suffix}"] = url
    return env


def apply_env(env: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> None:
    """Set ``env`` in ``target`` (default ``os.environ``) and remove :data:`UNSET`."""
    environ = os.environ if target is None else target
    environ.update(env)
    for name in UNSET:
        environ.pop(name, None)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (SSM, SQS, Kinesis...) in a thread on a free 127.0.0.1 port; yields its
    URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
