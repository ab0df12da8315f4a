"""ROS 2 edge of the brain: one node per file, each a thin adapter over the ROS-free modules."""
