"""Episode collection: dataset round trip, resume, and an interrupted `ami-robot collect`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ami_sim
from ami_robot.data import episodes as dataset
from ami_sim.collect import CollectConfig, collect, run_episode


@pytest.mark.parametrize("name", ["tworoom", "pusht", "reacher"])
def test_collected_episodes_round_trip_and_replay(tmp_path, name):
    config = CollectConfig(
        env=name, episodes=3, out=tmp_path, policy="expert", noise=0.2, seed=5, workers=1, max_steps=30
    )
    summary = collect(config, progress=False)
    assert summary.episodes == 3 and summary.new_episodes == 3 and not summary.interrupted
    index = dataset.read_index(tmp_path)
    assert index["env"] == name and index["episodes"] == [dataset.episode_name(i) for i in range(3)]
    env = ami_sim.make_env(name)
    for i, episode in enumerate(dataset.iter_episodes(tmp_path)):
        t = len(episode)
        assert 1 <= t <= 30
        assert episode.observations.shape == (t + 1, 64, 64, 3) and episode.observations.dtype == np.uint8
        assert episode.actions.shape == (t, 2) and episode.states.shape == (t + 1, env.unwrapped.state_dim)
        assert episode.attrs["env"] == name and episode.attrs["seed"] == 5 + i and episode.attrs["policy"] == "expert"
        assert episode.goal_observation.shape == (64, 64, 3) and episode.goal_state is not None
        # The stored actions replayed from the stored seed give back the stored observations and states.
        observation, info = env.reset(seed=int(episode.attrs["seed"]))
        np.testing.assert_array_equal(observation, episode.observations[0])
        for k, action in enumerate(episode.actions):
            observation, _, _, _, info = env.step(action)
            np.testing.assert_allclose(info["state"], episode.states[k + 1], atol=1e-4)
        np.testing.assert_array_equal(observation, episode.observations[-1])
        assert bool(episode.attrs["success"]) == bool(info["success"])


def test_collect_at_the_expert_pace_asked_for(tmp_path):
    from ami_robot.cli import main

    out = tmp_path / "paced"
    argv = ["collect", "--env", "pusht", "--episodes", "1", "--noise", "0", "--workers", "1", "--max-steps", "20"]
    assert main([*argv, "--max-action", "0.25", "--no-progress", "--out", str(out)]) == 0
    episode = next(dataset.iter_episodes(out))
    assert episode.attrs["max_action"] == 0.25
    assert np.linalg.norm(episode.actions, axis=1).max() <= 0.25 + 1e-6
    assert main([*argv, "--max-action", "0", "--out", str(tmp_path / "bad")]) == 2


def test_collect_resumes_without_redoing_episodes(tmp_path):
    collect(CollectConfig(env="tworoom", episodes=2, out=tmp_path, workers=1), progress=False)
    first = (tmp_path / dataset.episode_name(0)).stat().st_mtime_ns
    summary = collect(CollectConfig(env="tworoom", episodes=4, out=tmp_path, workers=1), progress=False)
    assert summary.episodes == 4 and summary.new_episodes == 2
    assert (tmp_path / dataset.episode_name(0)).stat().st_mtime_ns == first
    with pytest.raises(ValueError, match="tworoom"):
        collect(CollectConfig(env="reacher", episodes=1, out=tmp_path, workers=1), progress=False)


def test_chained_goals_make_one_seamless_trajectory_through_several_goals(tmp_path):
    config = CollectConfig(
        env="tworoom", episodes=2, out=tmp_path, noise=0.2, seed=3, workers=1, max_steps=200, chain_goals=True
    )
    collect(config, progress=False)
    env = ami_sim.make_env("tworoom")
    max_step = env.unwrapped.config.max_step
    for episode in dataset.iter_episodes(tmp_path):
        assert len(episode) == 200, "a chained episode runs to max_steps"
        assert episode.attrs["goals_reached"] >= 2 and episode.attrs["success"]
        assert np.abs(np.diff(episode.states, axis=0)).max() <= max_step + 1e-6, "no jump between goals"
        env.reset(seed=int(episode.attrs["seed"]))
        for k, action in enumerate(episode.actions):
            _, _, _, _, info = env.step(action)
            np.testing.assert_allclose(info["state"], episode.states[k + 1], atol=1e-4)


def test_chaining_goals_in_an_env_that_cannot_keep_its_state_is_refused():
    class ResetsAnywhere:
        spec = None

        def reset(self, seed=None, options=None):
            self.position = np.random.default_rng().uniform(size=2)
            return np.zeros((4, 4, 3), np.uint8), self.info(True)

        def step(self, action):
            return np.zeros((4, 4, 3), np.uint8), 0.0, True, False, self.info(True)

        def info(self, success):
            return {"state": self.position, "success": success, "goal_observation": None, "goal_state": None}

    class Still:
        def reset(self, info):
            pass

        def act(self, observation, info):
            return np.zeros(2, np.float32)

    with pytest.raises(ValueError, match="cannot chain goals"):
        run_episode(ResetsAnywhere(), Still(), seed=0, max_steps=5, chain_goals=True)


def test_mixed_policy_uses_both(tmp_path):
    collect(
        CollectConfig(env="tworoom", episodes=12, out=tmp_path, policy="mixed", workers=1, max_steps=5), progress=False
    )
    policies = {e.attrs["policy"] for e in dataset.iter_episodes(tmp_path)}
    assert policies == {"expert", "random"}


@pytest.mark.parametrize("stop, workers", [(signal.SIGINT, 2), (signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_interrupted_collect_keeps_finished_episodes(tmp_path, stop, workers):
    out = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "ami_robot.cli",
        "collect",
        "--env",
        "pusht",
        "--episodes",
        "100000",
        "--policy",
        "expert",
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--no-progress",
        "--json",
        str(tmp_path / "m.json"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.is_dir() or len(dataset.episode_files(out)) < 4):
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.1)
        assert len(dataset.episode_files(out)) >= 4, "collect wrote no episodes within 60 s"
        process.send_signal(stop)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    assert "interrupted" in output
    files = dataset.episode_files(out)
    assert 4 <= len(files) < 100000
    assert not list(out.glob(".*tmp*")), "temporary files left behind"
    index = json.loads((out / dataset.INDEX).read_text())
    assert index["episodes"] == [f.name for f in files]
    for path in files:
        episode = dataset.read_episode(path)
        assert len(episode) >= 1 and episode.observations.shape[1:] == (64, 64, 3)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["interrupted"] and metrics["episodes"] == len(files)


def descendants(pid: int) -> list[int]:
    """Live processes below `pid` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
def test_killed_collect_takes_its_workers_along_and_the_next_run_rebuilds_the_index(tmp_path):
    """SIGKILL leaves no cleanup to the parent: the kernel must stop the workers (they used to collect
    every remaining episode, then block forever on a full queue, holding their semaphores)."""
    out = tmp_path / "data"
    command = [sys.executable, "-m", "ami_robot.cli", "collect", "--env", "tworoom", "--episodes", "100000"]
    command += ["--max-steps", "20", "--out", str(out), "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not out.is_dir() or len(dataset.episode_files(out)) < 4):
            assert process.poll() is None
            time.sleep(0.1)
        workers = descendants(process.pid)
        assert len(workers) >= 2 and len(dataset.episode_files(out)) >= 4, "collect is running with its workers"
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(running(pid) for pid in workers):
            time.sleep(0.1)
        assert not [pid for pid in workers if running(pid)], "workers outlived the killed collect"
    finally:
        for pid in [process.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finished = len(dataset.episode_files(out))
    requested = 2 * finished + 1  # beyond the highest index either worker reached
    config = CollectConfig(env="tworoom", episodes=requested, out=out, workers=1, max_steps=20)
    summary = collect(config, progress=False)
    assert summary.episodes == requested and summary.new_episodes == requested - finished
    assert not list(out.glob(".*tmp*")), "half-written files of the killed run are removed"
    assert dataset.read_index(out)["episodes"] == [f.name for f in dataset.episode_files(out)]


@pytest.mark.parametrize(
    "setting,message", [({"noise": -0.1}, "noise must be >= 0"), ({"repeat_probability": 1.5}, "repeat_probability")]
)
def test_bad_expert_settings_are_refused_before_any_worker_starts(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        CollectConfig(env="pusht", episodes=1, out=tmp_path, **setting)
    assert not any(tmp_path.iterdir())
