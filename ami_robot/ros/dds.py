"""Keep ROS 2 / DDS traffic on this machine.

`localhost_environment()` returns the variables every ami_robot process that starts DDS must run
with: discovery limited to localhost, the Fast DDS loopback + shared-memory profile shipped with
the package, and a per-run domain id. `apply_localhost_environment()` sets them in this process
before rclpy is imported. Nothing here imports rclpy.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

FASTDDS_PROFILE = Path(__file__).with_name("fastdds_localhost.xml")
DOMAIN_ID_RANGE = (1, 101)
"""Domain ids whose default UDP ports are valid on Linux (0 is left for other software)."""


def pick_domain_id(seed: int | None = None) -> int:
    """A domain id in `DOMAIN_ID_RANGE`, random per run unless `seed` is given."""
    rng = random.Random(seed if seed is not None else (os.getpid() << 16) ^ int.from_bytes(os.urandom(4)))
    return rng.randint(*DOMAIN_ID_RANGE)


def _ament_prefix() -> str | None:
    for prefix in (sys.prefix, sys.base_prefix):
        if (Path(prefix) / "share" / "ament_index").is_dir():
            return prefix
    return None


def localhost_environment(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that starts DDS, keeping all traffic on loopback and shared memory.

    An explicit `domain_id`, else `AMI_ROBOT_DOMAIN_ID` or `ROS_DOMAIN_ID` from `base`, else a
    random one. `base` defaults to `os.environ` and is not modified.
    """
    env = dict(os.environ if base is None else base)
    if domain_id is None:
        inherited = env.get("AMI_ROBOT_DOMAIN_ID") or env.get("ROS_DOMAIN_ID")
        domain_id = int(inherited) if inherited else pick_domain_id()
    if not DOMAIN_ID_RANGE[0] <= domain_id <= 232:
        raise ValueError(f"ROS_DOMAIN_ID must be in [{DOMAIN_ID_RANGE[0]}, 232], got {domain_id}")
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["AMI_ROBOT_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    prefix = _ament_prefix()
    if prefix is not None:
        paths = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
        if prefix not in paths:
            env["AMENT_PREFIX_PATH"] = os.pathsep.join([prefix, *paths])
    return env


def apply_localhost_environment(domain_id: int | None = None) -> int:
    """Set `localhost_environment()` in this process; returns the domain id. Call before `import rclpy`."""
    env = localhost_environment(domain_id)
    os.environ.update(env)
    for key in ("ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        os.environ.pop(key, None)
    return int(env["ROS_DOMAIN_ID"])
