"""The brain on a robot: `ros2 launch ami_robot brain.launch.py image_topic:=/camera/image_raw`.

Runs the configurator, perception, planner and memory nodes in one process (`brain` executable,
lowest latency) or, with `separate_processes:=true`, one process each. Parameters come from
`params_file` (default share/ami_robot/params/brain.yaml); `checkpoint` and `backend`, when
given, override it.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "namespace": ("", "namespace of all brain nodes and topics"),
    "image_topic": ("camera/image", "camera input (sensor_msgs/Image)"),
    "command_topic": ("cmd_vel", "command output (TwistStamped, or Float32MultiArray with command_type array)"),
    "goal_topic": ("goal/image", "goal image input (sensor_msgs/Image)"),
    "checkpoint": ("", "world-model checkpoint directory (empty: the one in params_file)"),
    "backend": ("", "planner backend auto, cpu, torch or cuda (empty: the one in params_file)"),
    "command_type": ("", "twist or array (empty: the one in params_file)"),
    "separate_processes": ("false", "one process per node instead of the single brain process"),
    "autostart": ("true", "configure and activate the nodes at start (false: leave them to a lifecycle manager)"),
}

BRAIN_NODES = ("configurator", "perception", "planner", "memory")


def _nodes(context):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    params_file = LaunchConfiguration("params_file").perform(context)
    overrides = {k: value[k] for k in ("checkpoint", "backend", "command_type") if value[k]}
    remappings = [
        ("camera/image", value["image_topic"]),
        ("cmd_vel", value["command_topic"]),
        ("command", value["command_topic"]),
        ("goal/image", value["goal_topic"]),
    ]
    arguments = [] if value["autostart"].lower() == "true" else ["--no-autostart"]
    per_node = {
        "configurator": {k: v for k, v in overrides.items() if k in ("checkpoint", "backend")},
        "perception": {k: v for k, v in overrides.items() if k == "checkpoint"},
        "planner": {k: v for k, v in overrides.items() if k in ("checkpoint", "command_type")},
        "memory": {k: v for k, v in overrides.items() if k == "checkpoint"},
    }
    if value["separate_processes"].lower() == "true":
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
    return [GroupAction([PushRosNamespace(value["namespace"]), *nodes])]


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("ami_robot"), "params", "brain.yaml"])
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()
            ),
            DeclareLaunchArgument("params_file", default_value=default_params, description="brain parameter YAML"),
            OpaqueFunction(function=_nodes),
        ]
    )
