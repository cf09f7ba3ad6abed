"""Fixtures of the integration tier beside the stack (tests/conftest.py): a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import s3_server


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto in server mode, over HTTP) with a bucket; yields the
    environment of a Keel process whose content store is in it (KEEL_STORE=s3://…,
    KEEL_STORE_ENDPOINT_URL, AWS_*). The AWS variables are also set in this process while it
    lasts: boto reads credentials from the environment, for in-process clients and workers."""
    with s3_server(tmp_path_factory.mktemp("s3")) as env, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            patch.setenv(name, env[name])
        yield env
