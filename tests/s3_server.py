"""The test run's S3 server: moto's (``moto_server``, from PyPI) on a free loopback port, with one
bucket, started on first use and stopped when the session ends. It keeps objects in memory."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.loopback import free_loopback_port

BUCKET = "citybrain-lake"
#: moto accepts any credentials; these are what every client of the test server sends.
ACCESS_KEY, SECRET_KEY = "citybrain-test", "citybrain-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def settings(self, prefix: str) -> dict[str, str]:
        """The ``CITYBRAIN_*`` variables that put the lake's tables under ``prefix`` of the bucket."""
        return {
            "CITYBRAIN_LAKE_TABLES_URI": f"s3a://{self.bucket}/{prefix}",
            "CITYBRAIN_S3_ENDPOINT": self.endpoint,
            "CITYBRAIN_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "CITYBRAIN_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "CITYBRAIN_S3_PATH_STYLE": "true",
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    import boto3
    from botocore.exceptions import EndpointConnectionError

    port = free_loopback_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    binary = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        server = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except EndpointConnectionError:  # not listening yet
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield S3Server(endpoint, BUCKET)
    finally:
        server.terminate()
        server.wait(timeout=30)
