"""The simulated robots on ROS 2: the bridge node that makes an environment look like a robot."""
