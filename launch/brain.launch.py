"""The brain on a robot: `ros2 launch ami_robot brain.launch.py image_topic:=/camera/image_raw`.

Runs the configurator, perception, planner and memory nodes in one process (`brain` executable,
lowest latency) or, with `separate_processes:=true`, one process each. Settings come from a
BrainSettings YAML (`settings_file`, default: the checkpoint's brain.yaml), node parameters from
`params_file` (default share/ami_robot/params/brain.yaml, which also holds the real-time overrides);
`checkpoint`, `settings_file`, `backend`, `command_type`, `replan_every` and `plan_ahead`, when
given, override both. Each command type goes out on its own topic: `twist_topic` (TwistStamped,
default cmd_vel) or `array_topic` (Float32MultiArray, default command). `record:=BAG` also starts
the recorder, which writes the brain's topics into the ROS 2 bag directory BAG (MCAP);
`foxglove:=PORT` starts the Foxglove node, which serves them live to the Foxglove app on
ws://127.0.0.1:PORT (this machine only; 0: any free port, named in its log). The arguments are
declared and checked in `ami_robot.ros.launch_arguments`: a bad value stops the launch with one line
before any node starts.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from ami_robot.ros.launch_arguments import BRAIN_ARGUMENTS, check_launch_arguments, foxglove_port, launch_default
from ami_robot.ros.params import NODE_PARAMETERS, spec_names
from launch import LaunchDescription

BRAIN_NODES = ("configurator", "perception", "planner", "memory")
NODE_OVERRIDES = ("checkpoint", "settings_file", "backend", "command_type", "replan_every", "plan_ahead")


def _nodes(context):
    value = check_launch_arguments(
        {spec.name: LaunchConfiguration(spec.name).perform(context) for spec in BRAIN_ARGUMENTS}, BRAIN_ARGUMENTS
    )
    port = foxglove_port(value["foxglove"])
    params_file = LaunchConfiguration("params_file").perform(context)
    remappings = [
        ("camera/image", value["image_topic"]),
        ("cmd_vel", value["twist_topic"]),
        ("command", value["array_topic"]),
        ("goal/image", value["goal_topic"]),
    ]
    arguments = [] if value["autostart"] else ["--no-autostart"]
    per_node = {
        name: {k: value[k] for k in NODE_OVERRIDES if value[k] != "" and k in spec_names(NODE_PARAMETERS[name])}
        for name in BRAIN_NODES
    }
    if value["separate_processes"]:
        nodes = [
            Node(
                package="ami_robot",
                executable=name,
                name=name,
                output="screen",
                arguments=arguments,
                parameters=[params_file, per_node[name]],
                remappings=remappings,
            )
            for name in BRAIN_NODES
        ]
    else:
        merged = {k: v for params in per_node.values() for k, v in params.items()}
        nodes = [
            Node(
                package="ami_robot",
                executable="brain",
                output="screen",
                arguments=arguments,
                parameters=[params_file, merged],
                remappings=remappings,
            )
        ]
    if value["record"]:
        nodes.append(
            Node(
                package="ami_robot",
                executable="recorder",
                name="recorder",
                output="screen",
                parameters=[{"path": value["record"]}],
                remappings=remappings,
            )
        )
    if port is not None:
        nodes.append(
            Node(
                package="ami_robot",
                executable="foxglove",
                name="foxglove",
                output="screen",
                parameters=[{"port": port}],
                remappings=remappings,
            )
        )
    return [GroupAction([PushRosNamespace(value["namespace"]), *nodes])]


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("ami_robot"), "params", "brain.yaml"])
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(spec.name, default_value=launch_default(spec), description=spec.description)
                for spec in BRAIN_ARGUMENTS
            ),
            DeclareLaunchArgument("params_file", default_value=default_params, description="brain parameter YAML"),
            OpaqueFunction(function=_nodes),
        ]
    )
