"""The type stub `ami_robot/_core.pyi` matches the compiled extension: mypy's stubtest imports
`ami_robot._core` and compares every name, class, function and signature it can see with the stub.
The allowlist holds only what pybind11 itself adds (metaclass, enum internals)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mypy.stubtest", reason="mypy is not installed (it comes with the test extra)")


@pytest.mark.slow
def test_stub_matches_the_extension(tmp_path):
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "ami_robot._core",
            "--mypy-config-file",
            str(config),
            "--allowlist",
            str(ROOT / "tests" / "stubtest_allowlist.txt"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
