"""A real S3 endpoint for tests: moto's server on a free local port, and Django's default storage
pointed at a fresh bucket on it, configured by the DISPATCH_S3_* block of config/settings/base.py.

Use it from a test module with `from tests.s3 import moto_s3_server, s3_bucket  # noqa: F401`
(pytest finds the fixtures a module holds), then ask for the `s3` fixture: within the test
`default_storage`, and so every FileField, is an S3Storage on a new bucket.
"""

from __future__ import annotations

import os
import runpy
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from django.core.files.storage import storages

REGION = "us-east-1"
BASE_SETTINGS = Path(__file__).resolve().parent.parent / "config" / "settings" / "base.py"


def s3_storages(*, bucket: str, endpoint_url: str, region: str = REGION) -> dict:
    """STORAGES exactly as config/settings/base.py builds it when DISPATCH_S3_BUCKET is set: the
    settings file itself is run with those variables, so nothing here copies its options."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DISPATCH_S3_BUCKET", bucket)
        env.setenv("DISPATCH_S3_ENDPOINT_URL", endpoint_url)
        env.setenv("DISPATCH_S3_REGION", region)
        namespace = runpy.run_path(str(BASE_SETTINGS))
    return namespace["STORAGES"]


@dataclass(frozen=True)
class Request:
    """One request Django's storage sent to S3, as it went on the wire (headers lower-cased)."""

    method: str
    url: str
    headers: dict


@dataclass(frozen=True)
class Bucket:
    """The test's bucket, seen through boto3 directly (not through Django's storage), and the
    requests the storage sent to the S3 server during the test."""

    name: str
    client: object
    requests: list = field(default_factory=list)

    def keys(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture(scope="module", name="moto_s3")
def moto_s3_server():
    """moto's S3 server on 127.0.0.1 (a free port), with dummy credentials in the environment and
    no AWS configuration of the machine's in play; stopped when the module's tests are done."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                env.delenv(name)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(name="s3")
def s3_bucket(moto_s3, settings) -> Bucket:
    """A new, empty bucket, and Django's default storage on it for the test (the `settings`
    fixture puts STORAGES back afterwards; Django drops its cached storages on either change)."""
    name = f"dispatch-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_s3, region_name=REGION)
    client.create_bucket(Bucket=name)
    settings.STORAGES = s3_storages(bucket=name, endpoint_url=moto_s3)
    bucket = Bucket(name=name, client=client)

    def record(request, **kwargs):
        headers = {
            key.lower(): value.decode() if isinstance(value, bytes) else value for key, value in request.headers.items()
        }
        bucket.requests.append(Request(method=request.method, url=request.url, headers=headers))

    # The storage's client (one per thread; the test client, django-q's synchronous tasks and
    # s3transfer's upload threads all use this thread's).
    storages["default"].connection.meta.client.meta.events.register("before-send.s3", record)
    return bucket
