"""A simulated robot driven by the brain: `ros2 launch ami_robot sim.launch.py env:=tworoom`.

Starts the `sim_robot` node (camera, state, commands, `robot/reset` service) and includes
brain.launch.py wired to it. Call `ros2 service call /robot/reset std_srvs/srv/Trigger` to start
an episode; `ami-robot demo` does all of this without ROS 2 launch.
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ami_robot")
    robot = Node(
        package="ami_robot",
        executable="sim_robot",
        name="sim_robot",
        output="screen",
        parameters=[
            LaunchConfiguration("robot_params_file"),
            {"env": LaunchConfiguration("env"), "rate_hz": LaunchConfiguration("rate_hz")},
        ],
    )
    brain = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "brain.launch.py"])),
        launch_arguments={
            "checkpoint": LaunchConfiguration("checkpoint"),
            "backend": LaunchConfiguration("backend"),
            "params_file": LaunchConfiguration("params_file"),
            "separate_processes": LaunchConfiguration("separate_processes"),
        }.items(),
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("env", default_value="tworoom", description="simulated environment"),
            DeclareLaunchArgument("rate_hz", default_value="10.0", description="simulation and camera rate (Hz)"),
            DeclareLaunchArgument("checkpoint", default_value="", description="world-model checkpoint directory"),
            DeclareLaunchArgument("backend", default_value="", description="planner backend"),
            DeclareLaunchArgument(
                "separate_processes", default_value="false", description="one process per brain node"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([share, "params", "brain.yaml"]),
                description="brain parameter YAML",
            ),
            DeclareLaunchArgument(
                "robot_params_file",
                default_value=PathJoinSubstitution([share, "params", "sim_robot.yaml"]),
                description="simulated robot parameter YAML",
            ),
            robot,
            brain,
        ]
    )
