"""Window loading from episode datasets: boundaries, frameskip blocks, normalisation, splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ami_robot.data.episodes import Episode, dataset_digest, dataset_provenance
from ami_robot.data.windows import EpisodeWindows, load_episodes, split_episode_files
from ami_robot.errors import DataError
from ami_sim.dotworld import write_dot_dataset


def _counting_episode(episode_id: int, steps: int) -> Episode:
    """Frames whose pixel value encodes (episode, t); actions and states encode t."""
    t = np.arange(steps + 1)
    observations = np.zeros((steps + 1, 4, 4, 3), np.uint8)
    observations[..., 0] = t[:, None, None]
    observations[..., 1] = episode_id
    actions = np.stack([t[:-1], -t[:-1]], 1).astype(np.float32) + 100 * episode_id
    return Episode(observations=observations, actions=actions, states=t[:, None].astype(np.float32))


@pytest.mark.parametrize("history,horizon,frameskip", [(1, 1, 1), (2, 3, 1), (1, 2, 3), (3, 1, 2)])
def test_windows_stay_inside_episodes_and_blocks_hold_skipped_actions(
    history: int, horizon: int, frameskip: int
) -> None:
    episodes = [_counting_episode(0, 10), _counting_episode(1, 7), _counting_episode(2, 2)]
    windows = EpisodeWindows(episodes, history, horizon, frameskip)
    windows.use_action_normalisation(np.zeros(2), np.ones(2))
    length = history + horizon
    span = (length - 1) * frameskip
    assert len(windows) == sum(max(len(e.observations) - span, 0) for e in episodes)
    batch = windows.windows(np.arange(len(windows)))
    assert batch.observations.shape == (len(windows), length, 4, 4, 3)
    assert batch.actions.shape == (len(windows), length - 1, 2 * frameskip)
    t = batch.observations[..., 0, 0, 0].numpy().astype(int)
    episode = batch.observations[..., 0, 0, 1].numpy().astype(int)
    assert np.all(episode == episode[:, :1]), "a window crossed an episode boundary"
    np.testing.assert_array_equal(np.diff(t, axis=1), frameskip)
    np.testing.assert_array_equal(batch.states[..., 0].numpy(), t)
    blocks = batch.actions.numpy().reshape(len(windows), length - 1, frameskip, 2)
    expected_t = t[:, :-1, None] + np.arange(frameskip)
    np.testing.assert_array_equal(blocks[..., 0], expected_t + 100 * episode[:, :1, None])


def test_action_normalisation_uses_given_statistics() -> None:
    windows = EpisodeWindows([_counting_episode(0, 5)], 1, 1)
    stats = windows.action_stats
    np.testing.assert_allclose(stats.mean, [2.0, -2.0])
    np.testing.assert_allclose((stats.low, stats.high), ([0, -4], [4, 0]))
    batch = windows.windows(np.arange(len(windows)))
    np.testing.assert_allclose(batch.actions[:, 0, 0].numpy(), (np.arange(5) - 2.0) / np.sqrt(2.0), rtol=1e-5)


def test_split_is_seeded_and_disjoint_and_cap_limits_frames(tmp_path: Path) -> None:
    write_dot_dataset(tmp_path, episodes=10, steps=5, image_size=16)
    train, val = split_episode_files(tmp_path, 0.2, seed=3)
    assert (len(train), len(val)) == (8, 2) and not set(train) & set(val)
    assert split_episode_files(tmp_path, 0.2, seed=3) == (train, val)
    assert len(load_episodes(train, max_frames=13)) == 3
    resized = EpisodeWindows(load_episodes(train[:2]), 1, 1, image_size=8)
    assert resized.observations.shape[1:] == (8, 8, 3)


def test_too_short_for_any_window_gives_empty_index() -> None:
    assert len(EpisodeWindows([_counting_episode(0, 2)], 2, 2)) == 0


def test_provenance_names_the_data_by_content_not_by_where_it_lies(tmp_path: Path) -> None:
    original = write_dot_dataset(tmp_path / "dots", episodes=3, steps=5, image_size=16)
    moved = Path(shutil.copytree(original, tmp_path / "elsewhere" / "dots"))
    recorded = dataset_provenance(moved)
    assert recorded == dataset_provenance(original)
    assert recorded["name"] == "dots" and recorded["episodes"] == 3 and str(tmp_path) not in str(recorded)
    assert len(recorded["sha256"]) == 64

    first = sorted(moved.glob("episode_*.h5"))[0]
    content = first.read_bytes()
    first.write_bytes(content[:-1] + bytes([content[-1] ^ 0xFF]))
    assert dataset_digest(moved) != dataset_digest(original)
    first.write_bytes(content)
    assert dataset_digest(moved) == dataset_digest(original)
    first.rename(first.with_name("episode_000099.h5"))
    assert dataset_digest(moved) != dataset_digest(original)


def test_several_directories_split_each_as_alone_and_are_recorded_each(tmp_path: Path) -> None:
    first = write_dot_dataset(tmp_path / "slow", episodes=10, steps=5, image_size=16, seed=0)
    second = write_dot_dataset(tmp_path / "fast", episodes=5, steps=5, image_size=16, seed=1)
    train, val = split_episode_files([first, second], 0.2, seed=3)
    alone = [split_episode_files(directory, 0.2, seed=3) for directory in (first, second)]
    assert (train, val) == (alone[0][0] + alone[1][0], alone[0][1] + alone[1][1])

    recorded = dataset_provenance([first, second])
    assert recorded["name"] == "slow+fast" and recorded["episodes"] == 15
    assert recorded["datasets"] == [dataset_provenance(first), dataset_provenance(second)]
    assert dataset_provenance([first]) == dataset_provenance(first), "one directory is recorded as before"


def test_several_directories_refuse_a_repeat_and_two_robots(tmp_path: Path) -> None:
    dots = write_dot_dataset(tmp_path / "dots", episodes=3, steps=5, image_size=16)
    (tmp_path / "link").symlink_to(dots)
    with pytest.raises(DataError, match="more than once"):
        split_episode_files([dots, tmp_path / "link"], 0.2, seed=0)
    other = Path(shutil.copytree(dots, tmp_path / "other"))
    index = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**index, "env": "pusht"}))
    with pytest.raises(DataError, match="different robots"):
        split_episode_files([dots, other], 0.2, seed=0)
    with pytest.raises(DataError, match="does not exist"):
        split_episode_files([dots, tmp_path / "missing"], 0.2, seed=0)
