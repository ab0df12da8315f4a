"""`ami-robot eval` and the evaluation harness: outputs, dataset-sourced goals, pluggable policies."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

import ami_robot.data.episodes
import ami_sim
from ami_robot.checkpoints import shipped_envs
from ami_robot.cli import main
from ami_robot.commands import evaluate as evaluate_command
from ami_sim import evaluation
from ami_sim.collect import CollectConfig, collect
from ami_sim.evaluation import _frame_pairs_from_stream, evaluate, protocol_for, start_goal_pairs


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


class RecordingEnv(gym.Wrapper):
    """Records the reset seed and the states of every episode."""

    def __init__(self, env):
        super().__init__(env)
        self.seeds, self.episodes = [], []

    def reset(self, *, seed=None, options=None):
        observation, info = self.env.reset(seed=seed, options=options)
        self.seeds.append(seed)
        self.episodes.append([info["state"]])
        return observation, info

    def step(self, action):
        result = self.env.step(action)
        self.episodes[-1].append(result[-1]["state"])
        return result


def locate(pair, episodes, offset):
    """(episode, frame) of every place where `pair` is (states[t], states[t + offset]) of one episode."""
    start, goal = (np.asarray(s, np.float32) for s in pair)
    return [
        (e, t)
        for e, states in enumerate(episodes)
        for t in range(len(states) - offset)
        if np.array_equal(states[t], start) and np.array_equal(states[t + offset], goal)
    ]


@pytest.mark.parametrize("name", ["lewm", "long"])
def test_tworoom_pairs_are_offset_steps_apart_on_held_out_trajectories(name):
    protocol = protocol_for("tworoom", name)
    env = RecordingEnv(ami_sim.make_env("tworoom", max_episode_steps=400))
    pairs = start_goal_pairs("tworoom", 6, protocol, seed=3, env=env)
    assert min(env.seeds) == protocol.held_out_seed >= 10_000, "seeds disjoint from the collection's 0, 1, ..."
    for pair in pairs:
        assert locate(pair, env.episodes, protocol.goal_offset_steps), "goal offset steps after the start"
    assert all(len(states) <= (protocol.trajectory_steps or 100) + 1 for states in env.episodes)


def test_pusht_and_reacher_default_to_the_published_protocols():
    """stable-worldmodel's pusht.yaml and reacher.yaml: frames of the data set, goal 25 frames ahead,
    50 steps; PushT's data from the expert, Reacher's from random actions in episodes of 200 steps."""
    pusht, reacher = protocol_for("pusht"), protocol_for("reacher")
    for protocol in (pusht, reacher):
        assert (protocol.name, protocol.goal_offset_steps, protocol.step_budget) == ("lewm", 25, 50)
        assert protocol.pair_sampling == "frame"
    assert pusht.data_policy == "expert" and reacher.data_policy == "random"
    assert reacher.trajectory_steps == 200
    assert protocol_for("pusht", "episode").pair_sampling == "episode"
    assert pusht.expert_max_action == 0.25, "the pace of the published expert set (ami_sim.evaluation)"
    former = dataclasses.replace(pusht, name="fast_expert", expert_max_action=None)
    assert protocol_for("pusht", "fast_expert") == former
    assert protocol_for("reacher", "short").goal_offset_steps == 15


def test_reacher_pairs_come_from_random_action_episodes():
    protocol = dataclasses.replace(protocol_for("reacher"), trajectory_steps=40)
    env = RecordingEnv(ami_sim.make_env("reacher"))
    pairs = start_goal_pairs("reacher", 4, protocol, seed=0, env=env)
    assert min(env.seeds) == protocol.held_out_seed
    for pair in pairs:
        assert locate(pair, env.episodes, 25), "goal 25 steps after the start"
    random = ami_sim.make_random("reacher", seed=protocol.held_out_seed, env=env)
    replay = ami_sim.make_env("reacher")
    _, info = replay.reset(seed=protocol.held_out_seed)
    states = [info["state"]]
    for _ in range(40):
        _, _, _, _, info = replay.step(random.act(None, info))
        states.append(info["state"])
    np.testing.assert_array_equal(np.stack(states), env.episodes[0], "the first episode is random actions")


def test_frame_sampling_favours_long_trajectories_as_a_dataset_would():
    """Trajectories with 1 and 9 valid starts: drawing frames uniformly picks the long one 9 times as often."""
    offset = 5
    short, long = np.zeros((offset + 1, 2)), np.ones((offset + 9, 2))
    pairs = _frame_pairs_from_stream(
        itertools.cycle([short, long]), 4000, offset, max_frames=offset + 9, rng=np.random.default_rng(0)
    )
    from_long = np.mean([p[0][0] == 1.0 for p in pairs])
    assert 0.88 < from_long < 0.92


def test_frame_pairs_from_a_dataset_are_distinct_frames_of_one_episode(tmp_path):
    collect(
        CollectConfig(env="tworoom", episodes=6, out=tmp_path, noise=2.0, repeat_probability=0.05, workers=1),
        progress=False,
    )
    episodes = [e.states for e in ami_robot.data.episodes.iter_episodes(tmp_path)]
    protocol = dataclasses.replace(protocol_for("tworoom"), goal_offset_steps=5)
    env = ami_sim.make_env("tworoom")
    pairs = start_goal_pairs("tworoom", 12, protocol, seed=0, env=env, dataset_dir=tmp_path)
    places = [locate(pair, episodes, 5) for pair in pairs]
    assert all(places), "each goal is the frame 5 steps after its start, in the same episode"
    assert len({p[0] for p in places}) == 12, "frames drawn without replacement"


class StraightRight:
    def reset(self, info):
        pass

    def act(self, observation, info):
        return np.array([1.0, 0.0], np.float32)


def test_success_counts_at_any_step_of_the_budget(monkeypatch):
    start, goal = np.array([0.2, 0.75]), np.array([0.3, 0.75])
    monkeypatch.setattr(evaluation, "start_goal_pairs", lambda *args, **kwargs: [(start, goal)])
    result = evaluate("tworoom", StraightRight(), episodes=1)
    record = result.records[0]
    assert record.success and record.steps < 10, "passing within 16 px of the goal is a success"


def test_recorded_episodes_run_the_whole_budget_and_train_as_a_dataset(monkeypatch, tmp_path):
    """--record-episodes writes the policy's own episodes as training data: every step of the budget
    (success still counted at its first step at the goal), actions as they were sent, and refuses a
    directory that already holds episodes."""
    from ami_robot.data.windows import split_episode_files

    start, goal = np.array([0.2, 0.75]), np.array([0.3, 0.75])
    monkeypatch.setattr(evaluation, "start_goal_pairs", lambda *args, **kwargs: [(start, goal)] * 2)
    plain = evaluate("tworoom", StraightRight(), episodes=2, step_budget=30)
    out = tmp_path / "own"
    recorded = evaluate("tworoom", StraightRight(), episodes=2, step_budget=30, record_dir=out, policy_name="right")
    assert [r.steps for r in recorded.records] == [r.steps for r in plain.records] and plain.records[0].steps < 10
    assert [r.states for r in recorded.records] == [r.states for r in plain.records]
    episodes = list(ami_robot.data.episodes.iter_episodes(out))
    assert len(episodes) == 2
    for episode, record in zip(episodes, recorded.records):
        assert len(episode) == 30 and episode.observations.shape == (31, 64, 64, 3)
        np.testing.assert_array_equal(episode.actions, np.tile([1.0, 0.0], (30, 1)))
        np.testing.assert_allclose(episode.states[: record.steps + 1], np.asarray(record.states), rtol=1e-6)
        assert episode.attrs["success"] and episode.attrs["steps_to_success"] == record.steps
        np.testing.assert_allclose(episode.goal_state, goal)
    index = ami_robot.data.episodes.read_index(out)
    assert index["env"] == "tworoom" and index["policy"] == "evaluation:right" and index["image_size"] == 64
    assert index["pairs_from"] == "held-out trajectories"
    assert sum(len(part) for part in split_episode_files(out, 0.5, 0)) == 2
    with pytest.raises(ValueError, match="already holds episodes"):
        evaluate("tworoom", StraightRight(), episodes=1, record_dir=out)


class StopAtEpisode(StraightRight):
    """StraightRight that counts its episodes and stops the run (Ctrl-C) at the start of episode `stop`."""

    def __init__(self, stop: int | None = None) -> None:
        self.stop, self.episodes = stop, 0

    def reset(self, info):
        if self.episodes == self.stop:
            raise KeyboardInterrupt
        self.episodes += 1


def test_an_interrupted_recording_resumes_where_it_stopped(monkeypatch, tmp_path):
    """`--resume` runs only the episodes an interrupted recording lacks; the result, and every file,
    is the uninterrupted run's; a recording made otherwise (another budget, another number of pairs) is
    refused."""
    pairs = [(np.array([x, 0.75]), np.array([x + 0.1, 0.75])) for x in (0.2, 0.25, 0.3)]
    monkeypatch.setattr(evaluation, "start_goal_pairs", lambda _env, count, *args, **kwargs: pairs[:count])
    run = dict(episodes=3, step_budget=30, policy_name="right")
    whole = evaluate("tworoom", StraightRight(), record_dir=tmp_path / "whole", **run)
    with pytest.raises(KeyboardInterrupt):
        evaluate("tworoom", StopAtEpisode(stop=2), record_dir=tmp_path / "part", **run)
    assert len(ami_robot.data.episodes.episode_files(tmp_path / "part")) == 2
    with pytest.raises(ValueError, match="--resume"):
        evaluate("tworoom", StraightRight(), record_dir=tmp_path / "part", **run)
    with pytest.raises(ValueError, match="step_budget 30 \\(now 20\\)"):
        evaluate(
            "tworoom",
            StraightRight(),
            record_dir=tmp_path / "part",
            resume_recording=True,
            **(run | dict(step_budget=20)),
        )
    with pytest.raises(ValueError, match=r"pairs 3 \(now 1\)"):
        evaluate(
            "tworoom", StraightRight(), record_dir=tmp_path / "part", resume_recording=True, **(run | dict(episodes=1))
        )
    policy = StopAtEpisode()
    video = tmp_path / "resumed.mp4"
    resumed = evaluate("tworoom", policy, record_dir=tmp_path / "part", resume_recording=True, video_path=video, **run)
    assert policy.episodes == 1, "only the missing episode ran"
    assert video.stat().st_size > 0
    for mine, theirs in zip(resumed.records, whole.records):
        assert (mine.success, mine.steps, mine.final_distance) == (theirs.success, theirs.steps, theirs.final_distance)
        np.testing.assert_allclose(mine.states, theirs.states, rtol=1e-6)
    assert resumed.successes == whole.successes and resumed.mean_steps_to_success == whole.mean_steps_to_success
    for a, b in zip(*(ami_robot.data.episodes.iter_episodes(tmp_path / d) for d in ("part", "whole"))):
        for name in ("observations", "actions", "states", "goal_observation"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert {k: v for k, v in a.attrs.items() if k != "plan_ms"} == {
            k: v for k, v in b.attrs.items() if k != "plan_ms"
        }
    assert ami_robot.data.episodes.read_index(tmp_path / "part") == ami_robot.data.episodes.read_index(
        tmp_path / "whole"
    )


def test_eval_command_selects_the_long_protocol(tmp_path, capsys):
    json_path = tmp_path / "m.json"
    rc = main(
        [
            "eval",
            "--env",
            "tworoom",
            "--policy",
            "expert",
            "--episodes",
            "2",
            "--protocol",
            "long",
            "--json",
            str(json_path),
        ]
    )
    assert rc == 0 and "long: goal 100 steps ahead, 150 allowed" in capsys.readouterr().out
    protocol = json.loads(json_path.read_text())["protocol"]
    assert (protocol["name"], protocol["goal_offset_steps"], protocol["step_budget"]) == ("long", 100, 150)
    assert main(["eval", "--env", "pusht", "--policy", "random", "--protocol", "long"]) == 2
    assert "unknown protocol 'long' for pusht" in capsys.readouterr().err


def test_eval_set_changes_any_brain_setting_by_its_dotted_name(capsys):
    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(["--env", "tworoom", "--set", "planner.samples=48", "--set", "replan_every=2"])
    settings = evaluate_command.POLICIES["planner"].build(args, "tworoom").brain.configurator.settings
    assert (settings.planner.samples, settings.replan_every) == (48, 2)
    assert main(["eval", "--env", "tworoom", "--episodes", "1", "--set", "planner.sample=48"]) == 2
    assert "unknown setting 'planner.sample'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--env", "tworoom", "--set", "replan_every"])
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_eval_params_plans_as_the_ros_brain_does_with_that_parameter_file(tmp_path):
    """--params applies the brain settings of a ROS parameter file (a robot's real-time budget); --set goes over."""
    from pathlib import Path

    params = Path(evaluate_command.__file__).resolve().parents[2] / "launch" / "params" / "brain_pusht.yaml"
    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(["--env", "pusht", "--params", str(params), "--set", "planner.iterations=3"])
    settings = evaluate_command.POLICIES["planner"].build(args, "pusht").brain.configurator.settings
    assert (settings.plan_ahead, settings.replan_every, settings.safety.deadline_s) == (True, 5, 0.25)
    assert (settings.planner.samples, settings.planner.elites, settings.planner.iterations) == (150, 15, 3)
    (tmp_path / "bad.yaml").write_text("/**/planner:\n  ros__parameters: {plan_ahead: maybe}\n")
    assert main(["eval", "--env", "pusht", "--episodes", "1", "--params", str(tmp_path / "bad.yaml")]) == 2


SHIPPED = shipped_envs()


def test_every_simulated_robot_has_a_shipped_model() -> None:
    assert SHIPPED == sorted(ami_sim.ENV_NAMES)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_plans_by_default(tmp_path, name) -> None:
    """`ami-robot eval --env NAME` plans with the shipped model and its brain.yaml (a small search)."""
    small_search = ["--set", "planner.samples=16", "--set", "planner.elites=4", "--set", "planner.iterations=2"]
    rc = main(
        ["eval", "--env", name, "--episodes", "1", "--budget", "5", "--json", str(tmp_path / "m.json"), *small_search]
    )
    assert rc == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["policy"] == "planner" and metrics["episodes"] == 1 and metrics["mean_plan_ms"] > 0
    assert metrics["overruns"] == 0, "offline, the shipped settings leave a plan time to finish"
