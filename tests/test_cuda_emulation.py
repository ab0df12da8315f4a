"""The CUDA planner's own kernels and host code (FP32 path), run on the CPU by the emulation in
csrc/cuda/emulation, equal the reference planner: rollout costs, latents, plans on injected and
Philox noise, plan_device. Runs without a GPU; threads between barriers are scheduled in index
order and in reverse, which exposes unsynchronised shared-memory reads in either direction.
Not covered here: the TF32/BF16 tensor-core paths, cp.async asynchrony, timing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = [
    "csrc/cuda/cuda_planner.cu",
    "csrc/cuda/emulation/emulate_planner.cpp",
    "csrc/planner.cpp",
    "csrc/reference/reference.cpp",
]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (C++20) to build the CPU emulation")
def test_cuda_kernels_under_cpu_emulation_match_reference(tmp_path):
    exe = tmp_path / "emulate_planner"
    cmd = [
        "g++",
        "-std=c++20",
        "-O1",
        "-pthread",
        "-w",
        "-DAMI_CUDA_EMULATION",
        "-Icsrc/cuda/emulation/include",
        "-Icsrc",
        "-Icsrc/include",
        "-x",
        "c++",
        SOURCES[0],
        "-x",
        "none",
        *SOURCES[1:],
        "-o",
        str(exe),
    ]
    build = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-4000:]
    runs = [
        subprocess.Popen(
            [str(exe)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **extra}
        )
        for extra in ({}, {"AMI_EMU_REVERSE": "1"})
    ]
    for order, run in zip(("index order", "reverse order"), runs):
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0 and "PASSED" in out, f"{order} (rc {run.returncode}):\n{out[-6000:]}"
