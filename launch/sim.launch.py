"""A simulated robot driven by the brain: `ros2 launch ami_robot sim.launch.py env:=tworoom`.

Starts the `sim_robot` node (camera, state, commands, `robot/reset` service) and includes
brain.launch.py wired to it, driving with the model shipped for `env` unless `checkpoint:=DIR` or
`settings_file:=FILE` names another. Call `ros2 service call /robot/reset std_srvs/srv/Trigger` to start
an episode; `goal_offset:=N step_budget:=M` set how far ahead the goals lie and the steps allowed (0: the
protocol's); `record:=BAG` records the run into a ROS 2 bag (MCAP); `foxglove:=PORT` shows it live in
Foxglove on ws://127.0.0.1:PORT; `ami-robot demo` does all of
this without ROS 2 launch. The arguments are checked like the parameters they feed
(`ami_robot.ros.launch_arguments`): `env:=mars` stops the launch with one line before any node starts.
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from ami_robot.checkpoints import shipped_checkpoint
from ami_robot.ros.executables import brain_params_file
from ami_robot.ros.launch_arguments import BRAIN_ARGUMENTS, argument_like, check_launch_arguments, launch_default
from ami_sim.ros.params import SIM_ROBOT
from launch import LaunchDescription

BRAIN_PASSED = (
    "checkpoint",
    "settings_file",
    "backend",
    "command_type",
    "replan_every",
    "plan_ahead",
    "separate_processes",
    "record",
    "foxglove",
)
SIM_ARGUMENTS = [
    argument_like("env", SIM_ROBOT, description="simulated environment"),
    argument_like("rate_hz", SIM_ROBOT),
    argument_like("goal_offset", SIM_ROBOT),
    argument_like("step_budget", SIM_ROBOT),
    *(spec for spec in BRAIN_ARGUMENTS if spec.name in BRAIN_PASSED),
]
"""Arguments of sim.launch.py besides the parameter files; those in BRAIN_PASSED go to brain.launch.py,
and `command_type`, when given, to the robot as well (both then use its default command topic)."""


def _robot_and_brain(context):
    """The robot node and the brain wired to it, from the arguments checked once."""
    value = check_launch_arguments(
        {spec.name: LaunchConfiguration(spec.name).perform(context) for spec in SIM_ARGUMENTS}, SIM_ARGUMENTS
    )
    return [*_robot(context, value), *_brain(context, value)]


def _robot(context, value: dict) -> list:
    return [
        Node(
            package="ami_robot",
            executable="sim_robot",
            name="sim_robot",
            output="screen",
            parameters=[
                LaunchConfiguration("robot_params_file").perform(context),
                {
                    "env": value["env"],
                    "rate_hz": value["rate_hz"],
                    "goal_offset": value["goal_offset"],
                    "step_budget": value["step_budget"],
                    **({"command_type": value["command_type"]} if value["command_type"] else {}),
                },
            ],
        )
    ]


def _brain(context, value: dict) -> list:
    """brain.launch.py wired to the robot; with neither `checkpoint` nor `settings_file` given, it
    drives with the model shipped for `env`."""
    checkpoint = value["checkpoint"]
    shipped = not checkpoint and not value["settings_file"]
    if shipped:
        checkpoint = str(shipped_checkpoint(value["env"]))
    params_file = LaunchConfiguration("params_file").perform(context) or str(
        brain_params_file(value["env"] if shipped else None)
    )
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("ami_robot"), "launch", "brain.launch.py"])
            ),
            launch_arguments=[
                ("checkpoint", checkpoint),
                *((name, LaunchConfiguration(name)) for name in BRAIN_PASSED if name != "checkpoint"),
                ("params_file", params_file),
            ],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ami_robot")
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(spec.name, default_value=launch_default(spec), description=spec.description)
                for spec in SIM_ARGUMENTS
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value="",
                description="brain parameter YAML (empty: params/brain_<env>.yaml, the real-time budget of the "
                "model shipped for env, when the brain drives with it and one exists; else params/brain.yaml)",
            ),
            DeclareLaunchArgument(
                "robot_params_file",
                default_value=PathJoinSubstitution([share, "params", "sim_robot.yaml"]),
                description="simulated robot parameter YAML",
            ),
            OpaqueFunction(function=_robot_and_brain),
        ]
    )
