"""Fixtures for shared-index tests: moto's S3 server on 127.0.0.1, started and stopped here, a fresh bucket per
test, and the server's keys in the environment. Import the fixtures into a test module to use them."""

from __future__ import annotations

import pytest

from desktop_search.devtools import s3_server


@pytest.fixture(scope="module")
def s3():
    server = s3_server.LocalS3().start()
    yield server
    server.stop()


@pytest.fixture
def shared(s3) -> str:
    """A fresh bucket on the local server; the URI of an index in it."""
    return f"s3://{s3.create_bucket()}/team-index"


@pytest.fixture
def aws_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.SECRET_KEY)
    monkeypatch.setenv("DESKTOP_SEARCH_NO_KEYCHAIN", "1")
