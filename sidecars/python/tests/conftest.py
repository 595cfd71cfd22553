"""Fixtures: one real nats-server per test module, a short temp dir per test."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from helpers import NATS_SERVER, NatsServer, short_tempdir


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    if not NATS_SERVER.exists():
        pytest.skip(f"{NATS_SERVER} missing; run scripts/setup.sh")
    workdir = short_tempdir("nats")
    server = NatsServer(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture()
def workdir() -> Iterator[Path]:
    path = short_tempdir("t")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
