"""Shared fixtures: a real S3-compatible server (see ``s3server.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from s3server import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 server for the whole session, started only if a test asks for it.

    radosgw when the Ceph packages are installed, else moto; ``CHUNKWISE_S3_BACKEND``
    (``auto``, ``radosgw``, ``moto``) chooses.
    """
    with start_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[tuple[S3Server, str]]:
    """A fresh, empty, uniquely named bucket: ``(server, "s3://<bucket>")``."""
    name = s3_server.bucket(f"chunkwise-test-{uuid.uuid4().hex[:16]}")
    yield s3_server, f"s3://{name}"
