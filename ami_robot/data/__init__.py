"""Data: the episode dataset format (the contract between whatever makes data and training), the
rosbag2 import, and the training windows cut from episodes."""

from ami_robot.data.episodes import (
    Episode,
    dataset_digest,
    episode_files,
    iter_episodes,
    read_episode,
    read_index,
    write_episode,
)

__all__ = ["Episode", "dataset_digest", "episode_files", "iter_episodes", "read_episode", "read_index", "write_episode"]
