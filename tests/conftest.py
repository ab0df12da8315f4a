"""Test session set-up: keep every DDS participant of this run on this machine."""

from __future__ import annotations

import os

from ami_robot.ros.dds import apply_localhost_environment

os.environ.setdefault("MUJOCO_GL", "egl")
# Tests start several processes that use torch at once; OpenMP threads that spin-wait for a core
# another process holds slow everything down many times over on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
apply_localhost_environment()
