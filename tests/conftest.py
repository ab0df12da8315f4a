"""Test session set-up: keep every DDS participant of this run on this machine."""

from __future__ import annotations

import os

from ami_robot.ros.dds import apply_localhost_environment

os.environ.setdefault("MUJOCO_GL", "egl")
apply_localhost_environment()
