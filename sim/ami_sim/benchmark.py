"""Rendered environment steps per second on one core: `python -m ami_sim.benchmark [ENV ...]`.

Each step includes physics and rendering the pixel observation, through the gymnasium wrappers
(`make_env`), with uniform random actions drawn in advance. A measurement, not a test: numbers
depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ami_sim.registry import ENV_NAMES, make_env


def steps_per_second(name: str, steps: int = 5000, image_size: int = 64, seed: int = 0) -> float:
    """Rendered steps per second of env `name` (resets when an episode ends; resets are timed too)."""
    env = make_env(name, image_size=image_size)
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("envs", nargs="*", metavar="ENV", help=f"any of {', '.join(ENV_NAMES)} (default: all)")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.envs) - set(ENV_NAMES))
    if unknown:
        parser.error(f"unknown environment(s) {unknown}; choose from {', '.join(ENV_NAMES)}")
    for name in args.envs or ENV_NAMES:
        rate = steps_per_second(name, args.steps, args.image_size)
        print(f"{name:8s} {rate:9.0f} rendered steps/s ({args.image_size}x{args.image_size}, one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
