"""``pip install ./sidecars/python`` must give a package usable outside this repository: the kit AND the
generated ``pluginbridge`` namespace package (with its .pyi stubs) in the wheel."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from helpers import KIT_ROOT, short_tempdir


@pytest.fixture(scope="module")
def wheel() -> Iterator[Path]:
    out = short_tempdir("wheel")
    try:
        # Built from a copy: setuptools writes build/ and *.egg-info next to pyproject.toml, which must not
        # litter the checkout. Offline and bounded: the build backend comes from the dev venv (test extras).
        source = out / "src"
        shutil.copytree(
            KIT_ROOT, source,
            ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", ".pytest_cache", "__pycache__", "tests"),
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
             "--disable-pip-version-check", "-q", "-w", str(out), str(source)],
            check=True, timeout=240, capture_output=True,
        )
        wheels = list(out.glob("plugin_bridge-*.whl"))
        assert len(wheels) == 1, wheels
        yield wheels[0]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_wheel_holds_the_kit_and_the_generated_code(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "plugin_bridge/__init__.py",
        "plugin_bridge/py.typed",
        "plugin_bridge/serve.py",
        "plugin_bridge/sdk/client.py",
        "plugin_bridge/run_task.py",
        "plugin_bridge/examples/sql/__main__.py",
        "plugin_bridge/conformance/__main__.py",
        "pluginbridge/v1/task_pb2.py",
        "pluginbridge/v1/task_pb2.pyi",
        "pluginbridge/v1/plugin_pb2.py",
        "pluginbridge/v1/coordination_pb2.py",
        "pluginbridge/v1/task_service_pb2.py",
        "pluginbridge/plugins/sql/v1/sql_pb2.py",
        "pluginbridge/conformance/v1/conformance_pb2.py",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"
    assert not any(name.startswith("tests/") for name in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: protobuf==7.36.2" in text


def test_installed_wheel_imports_from_elsewhere(wheel: Path) -> None:
    venv = short_tempdir("venv")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        python = venv / "bin" / "python"
        # Dependencies come from the dev venv (no network): a .pth line puts its site-packages on the path.
        # Lines of a .pth only extend sys.path; the dev venv's own .pth files (the editable install) stay off.
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        deps = [p for p in site.getsitepackages() if "site-packages" in p]
        Path(purelib, "dev-deps.pth").write_text("\n".join(deps) + "\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
            check=True, timeout=120, capture_output=True,
        )
        elsewhere = short_tempdir("cwd")
        try:
            probe = (
                "import plugin_bridge, plugin_bridge.sdk, pluginbridge.v1.task_pb2 as t, pluginbridge.plugins.sql.v1.sql_pb2;"
                "import plugin_bridge.examples.sql, plugin_bridge.conformance, plugin_bridge.run_task;"
                "print(plugin_bridge.__file__); print(t.__file__)"
            )
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            done = subprocess.run(
                [str(python), "-c", probe], cwd=str(elsewhere), env=env, check=True, capture_output=True, text=True, timeout=60
            )
            kit_file, gen_file = done.stdout.split()
            assert kit_file.startswith(purelib), kit_file
            assert gen_file.startswith(purelib), gen_file
            usage = subprocess.run(
                [str(python), "-m", "plugin_bridge.run_task", "--help"], cwd=str(elsewhere), env=env,
                capture_output=True, text=True, timeout=60,
            )
            assert usage.returncode == 0 and "--spec" in usage.stdout
        finally:
            shutil.rmtree(elsewhere, ignore_errors=True)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
