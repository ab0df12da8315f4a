"""`ami-robot eval` and the evaluation harness: outputs, dataset-sourced goals, pluggable policies."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest

import ami_robot.data.episodes
import ami_sim
from ami_robot.cli import main
from ami_robot.commands import evaluate as evaluate_command
from ami_sim.collect import CollectConfig, collect
from ami_sim.evaluation import evaluate


@pytest.mark.parametrize("name", ["tworoom", "pusht", "reacher"])
def test_eval_command_writes_json_plot_and_video(tmp_path, name, capsys):
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "png", "mp4")}
    rc = main(
        [
            "eval",
            "--env",
            name,
            "--policy",
            "expert",
            "--episodes",
            "4",
            "--seed",
            "1",
            "--json",
            str(paths["json"]),
            "--plot",
            str(paths["png"]),
            "--video",
            str(paths["mp4"]),
        ]
    )
    assert rc == 0
    assert f"{name} / expert" in capsys.readouterr().out
    metrics = json.loads(paths["json"].read_text())
    for key in ("env", "episodes", "successes", "success_rate", "ci95", "mean_plan_ms", "mean_steps_to_success"):
        assert key in metrics
    assert metrics["env"] == name and metrics["episodes"] == 4 and len(metrics["records"]) == 4
    assert (
        metrics["success_rate"] == metrics["successes"] / 4
        and metrics["ci95"][0] <= metrics["success_rate"] <= metrics["ci95"][1]
    )
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = imageio.mimread(paths["mp4"], memtest=False)
    assert len(frames) > 4 and frames[0].shape[1] > frames[0].shape[0]  # observation beside goal


def test_goals_from_a_dataset(tmp_path):
    collect(CollectConfig(env="tworoom", episodes=8, out=tmp_path, noise=0.3, workers=1), progress=False)
    result = evaluate(
        "tworoom",
        ami_sim.make_expert("tworoom"),
        episodes=3,
        goal_offset_steps=10,
        step_budget=20,
        dataset_dir=tmp_path,
    )
    assert result.episodes == 3 and result.protocol.goal_offset_steps == 10
    starts = {tuple(np.round(r.start_state, 5)) for r in result.records}
    stored = {
        tuple(np.round(s.astype(np.float64), 5))
        for e in ami_robot.data.episodes.iter_episodes(tmp_path)
        for s in e.states
    }
    assert starts <= stored
    with pytest.raises(ValueError, match="start/goal pairs"):
        evaluate("tworoom", ami_sim.make_expert("tworoom"), episodes=3, goal_offset_steps=500, dataset_dir=tmp_path)
    with pytest.raises(ValueError, match="not 'pusht'"):
        evaluate("pusht", ami_sim.make_expert("pusht"), episodes=3, dataset_dir=tmp_path)


class GoalImagePolicy:
    """A stand-in for a planner: sees only pixels (observation and goal image), records what it got."""

    def __init__(self):
        self.calls = 0
        self.goal_shapes = set()

    def reset(self, info):
        self.goal_shapes.add(info["goal_observation"].shape)

    def act(self, observation, info):
        self.calls += 1
        return np.zeros(2, np.float32)


def test_a_new_policy_plugs_into_the_command(monkeypatch, tmp_path, capsys):
    policy = GoalImagePolicy()
    factory = evaluate_command.PolicyFactory(
        lambda args, env_name: policy, "test planner", lambda p: p.add_argument("--checkpoint")
    )
    monkeypatch.setitem(evaluate_command.POLICIES, "planner", factory)
    rc = main(
        [
            "eval",
            "--env",
            "tworoom",
            "--policy",
            "planner",
            "--checkpoint",
            "x",
            "--episodes",
            "2",
            "--budget",
            "7",
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0
    assert policy.calls == 14 and policy.goal_shapes == {(64, 64, 3)}
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["policy"] == "planner" and metrics["successes"] == 0 and metrics["mean_plan_ms"] >= 0
