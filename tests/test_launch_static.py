"""The launch files, parameter files and ROS 2 package metadata agree with the code, checked
statically (ROS 2 launch itself is not installed here; see test_launch_ros.py)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from ami_robot.config import load_yaml
from ami_robot.configurator import BrainSettings, settings_from_flat
from ami_robot.errors import ConfigError
from ami_robot.ros.launch_arguments import BRAIN_ARGUMENTS
from ami_robot.ros.params import NODE_PARAMETERS as BRAIN_NODE_PARAMETERS
from ami_robot.ros.params import flatten_parameters
from ami_sim.ros.params import SIM_ROBOT

NODE_PARAMETERS = {**BRAIN_NODE_PARAMETERS, "sim_robot": SIM_ROBOT}

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
PARAM_FILES = sorted((REPO / "launch" / "params").glob("*.yaml"))


def declared_executables() -> dict[str, str]:
    """name -> python module, from cmake/ros2_package.cmake (what lands in lib/ami_robot)."""
    text = (REPO / "cmake" / "ros2_package.cmake").read_text()
    return dict(re.findall(r"^ami_robot_ros_executable\((\w+) ([\w.]+)\)", text, flags=re.M))


def module_constants(tree: ast.Module) -> dict[str, object]:
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def launched_executables(path: Path) -> set[str]:
    """Every `executable=` of a launch_ros Node: string constants, or a loop variable over a module constant."""
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = module_constants(tree)
    loop_values: dict[str, object] = {}
    for node in ast.walk(tree):
        for generator in getattr(node, "generators", []):
            if isinstance(generator.target, ast.Name) and isinstance(generator.iter, ast.Name):
                loop_values[generator.target.id] = constants.get(generator.iter.id)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            keywords = {k.arg: k.value for k in node.keywords}
            assert ast.literal_eval(keywords["package"]) == "ami_robot", f"{path.name}: Node of another package"
            value = keywords["executable"]
            if isinstance(value, ast.Constant):
                found.add(value.value)
            else:
                assert isinstance(value, ast.Name) and loop_values.get(value.id), (
                    f"{path.name}: cannot resolve {ast.dump(value)}"
                )
                found.update(loop_values[value.id])
    return found


def test_package_xml_names_the_package() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "ami_robot"
    depends = {d.text for d in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "geometry_msgs", "lifecycle_msgs", "launch_ros"} <= depends
    assert (REPO / "resource" / "ami_robot").is_file(), "the ament index marker"


def test_cmake_installs_the_ros_package_layout() -> None:
    text = (REPO / "cmake" / "ros2_package.cmake").read_text()
    for destination in (
        "share/ament_index/resource_index/packages",
        "share/ami_robot",
        "/launch",
        "/params",
        "lib/ami_robot",
    ):
        assert destination in text
    assert "include(cmake/ros2_package.cmake)" in (REPO / "CMakeLists.txt").read_text()


def test_every_executable_runs_a_module_with_main() -> None:
    executables = declared_executables()
    assert {"brain", "perception", "planner", "configurator", "memory", "sim_robot"} <= set(executables)
    for name, module in executables.items():
        top, *rest = module.split(".")
        root = REPO / "sim" if top == "ami_sim" else REPO
        source = root.joinpath(top, *rest[:-1], rest[-1] + ".py")
        assert source.is_file(), f"{name}: {source} missing"
        assert re.search(r"^def main\(", source.read_text(), flags=re.M), f"{name}: {module} has no main()"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_start_only_declared_executables(path: Path) -> None:
    compile(path.read_text(), str(path), "exec")
    assert "generate_launch_description" in path.read_text()
    executables = launched_executables(path)
    assert executables, f"{path.name} starts nothing"
    assert executables <= set(declared_executables()), executables - set(declared_executables())


def test_launch_files_reference_existing_parameter_files_and_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in LAUNCH_FILES:
        for name in re.findall(r'"(\w+\.yaml)"', path.read_text()):
            assert (REPO / "launch" / "params" / name).is_file(), f"{path.name} refers to a missing {name}"
    brain_arguments = {spec.name for spec in BRAIN_ARGUMENTS} | {"params_file"}
    sim = load_launch_file("sim.launch.py", monkeypatch)
    _, include = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS))
    passed = {name for name, _ in include.kwargs["launch_arguments"]}
    assert "params_file" in passed and passed <= brain_arguments, passed - brain_arguments


def same_type(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, float) for v in value)
    return type(value) is type(default)


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_name_only_declared_parameters(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert document, f"{path.name} is empty"
    for key, section in document.items():
        node = key.rsplit("/", 1)[-1]
        assert node in NODE_PARAMETERS, f"{path.name}: unknown node {key!r}"
        declared = {spec.name: spec.default for spec in NODE_PARAMETERS[node]}
        for name, value in flatten_parameters(section["ros__parameters"] or {}).items():
            assert name in declared, f"{path.name}: {node} does not declare {name!r}"
            assert same_type(value, declared[name]), (
                f"{path.name}: {node}.{name} = {value!r} has another type than its default {declared[name]!r}"
            )


PUSHT_SAMPLES, PUSHT_ITERATIONS, PUSHT_ELITES = 150, 20, 15

REAL_TIME_OVERRIDES = {
    "brain.yaml": {
        "planner.samples": 200,
        "planner.iterations": 8,
        "planner.elites": 20,
        "safety.deadline_s": 0.25,
        "safety.max_rate": 0.5,
    },
    "brain_pusht.yaml": {
        "plan_ahead": True,
        "planner.samples": PUSHT_SAMPLES,
        "planner.iterations": PUSHT_ITERATIONS,
        "planner.elites": PUSHT_ELITES,
        "safety.deadline_s": 0.25,
    },
}
"""The settings each brain parameter file may override on the checkpoint's brain.yaml, and their
values: the real-time budget of a plan on a 10 Hz robot (brain_pusht.yaml: PushT's eight-predictor
model, planning each 5-step plan while the one before it runs). Any other setting there would make
the ROS brain and offline evaluation diverge silently."""


def test_each_brain_parameter_file_is_the_budget_of_a_shipped_model() -> None:
    from ami_robot.checkpoints import shipped_envs

    files = {path.name for path in (REPO / "launch" / "params").glob("brain*.yaml")}
    assert files == set(REAL_TIME_OVERRIDES)
    assert {name.removeprefix("brain_").removesuffix(".yaml") for name in files - {"brain.yaml"}} <= set(shipped_envs())


@pytest.mark.parametrize("name", sorted(REAL_TIME_OVERRIDES))
def test_ros_parameters_override_the_settings_file_only_with_the_real_time_budget(name: str) -> None:
    from ami_robot.ros.params import settings_in_params_file

    assert settings_in_params_file(REPO / "launch" / "params" / name) == REAL_TIME_OVERRIDES[name]


def test_a_parameter_file_that_sets_a_setting_twice_or_is_no_mapping_is_refused(tmp_path: Path) -> None:
    from ami_robot.ros.params import settings_in_params_file

    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "/**/planner:\n  ros__parameters: {checkpoint: /a}\n/**/memory:\n  ros__parameters: {checkpoint: /b}\n"
    )
    with pytest.raises(ConfigError, match="checkpoint is set to both '/a' and '/b'"):
        settings_in_params_file(twice)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="maps node names"):
        settings_in_params_file(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        settings_in_params_file(tmp_path / "missing.yaml")


def test_the_demo_brain_keeps_its_real_time_settings() -> None:
    offline = load_yaml(BrainSettings, REPO / "ami_robot" / "checkpoints" / "tworoom" / "brain.yaml")
    ros = settings_from_flat(REAL_TIME_OVERRIDES["brain.yaml"], offline)
    assert (ros.method, ros.planner.samples, ros.planner.iterations, ros.planner.elites) == ("cem", 200, 8, 20)
    assert (ros.safety.deadline_s, ros.safety.max_rate, ros.control_rate_hz) == (0.25, 0.5, 10.0)
    assert (ros.planner.horizon, ros.cost.goal_running_weight) == (5, 1.0)
    assert (offline.planner.samples, offline.planner.iterations, offline.safety.max_rate) == (300, 30, 2.0)
    offline = load_yaml(BrainSettings, REPO / "ami_robot" / "checkpoints" / "pusht" / "brain.yaml")
    ros = settings_from_flat(REAL_TIME_OVERRIDES["brain_pusht.yaml"], offline)
    assert (ros.plan_ahead, ros.replan_every, ros.planner.horizon, ros.cost.disagreement_weight) == (True, 5, 5, 8.0)
    assert (ros.planner.samples, ros.planner.iterations) == (PUSHT_SAMPLES, PUSHT_ITERATIONS)
    assert (ros.safety.deadline_s, ros.safety.max_rate) == (0.25, offline.safety.max_rate)


class _Substitution:
    """Stands in for LaunchConfiguration / PathJoinSubstitution / FindPackageShare."""

    def __init__(self, name: Any = "") -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


class _Action:
    """Stands in for every launch action: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


def load_launch_file(name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Import launch/NAME with stand-ins for ROS 2 launch (not installed here)."""
    stand_ins = {
        "launch": {"LaunchDescription": _Action},
        "launch.actions": {
            name: _Action
            for name in ("DeclareLaunchArgument", "GroupAction", "OpaqueFunction", "IncludeLaunchDescription")
        },
        "launch.substitutions": {"LaunchConfiguration": _Substitution, "PathJoinSubstitution": _Substitution},
        "launch.launch_description_sources": {"PythonLaunchDescriptionSource": _Action},
        "launch_ros.actions": {"Node": _Action, "PushRosNamespace": _Action},
        "launch_ros.substitutions": {"FindPackageShare": _Substitution},
    }
    for module_name, attributes in stand_ins.items():
        module = types.ModuleType(module_name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, module_name, module)
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), REPO / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate_launch_description()
    return module


def launch_context(module: types.ModuleType, arguments: list, **given: str) -> dict[str, str]:
    from ami_robot.ros.launch_arguments import launch_default

    context = {spec.name: launch_default(spec) for spec in arguments}
    context.update(params_file="brain.yaml", robot_params_file="sim_robot.yaml")
    context.update(given)
    return context


def test_brain_launch_starts_one_or_four_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS))
    assert [node.kwargs["executable"] for node in group.args[0][1:]] == ["brain"]
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, separate_processes="True", backend="cpu"))
    nodes = {node.kwargs["executable"]: node.kwargs for node in group.args[0][1:]}
    assert set(nodes) == {"configurator", "perception", "planner", "memory"}
    assert nodes["configurator"]["parameters"][1] == {"backend": "cpu"}
    assert nodes["perception"]["parameters"][1] == {}


@pytest.mark.parametrize(
    ("launch_file", "argument", "value", "message"),
    [
        ("brain.launch.py", "separate_processes", "yes", "separate_processes must be true or false, got 'yes'"),
        ("brain.launch.py", "autostart", "1", "autostart must be true or false"),
        ("brain.launch.py", "backend", "gpu", r"backend must be one of \['auto'"),
        ("brain.launch.py", "command_type", "bogus", r"command_type must be one of \['twist', 'array'\]"),
        ("brain.launch.py", "replan_every", "five", "replan_every must be an integer, got 'five'"),
        ("brain.launch.py", "replan_every", "0", "replan_every must be"),
        ("brain.launch.py", "plan_ahead", "maybe", "plan_ahead must be true or false"),
        ("sim.launch.py", "env", "mars", r"env must be one of \['tworoom'"),
        ("sim.launch.py", "rate_hz", "fast", "rate_hz must be a number"),
        ("sim.launch.py", "rate_hz", "nan", "rate_hz must be finite"),
        ("sim.launch.py", "separate_processes", "yes", "separate_processes must be true or false"),
        ("sim.launch.py", "goal_offset", "-1", "goal_offset must be"),
        ("sim.launch.py", "step_budget", "ten", "step_budget must be"),
    ],
)
def test_launch_arguments_are_checked_before_any_node_starts(
    monkeypatch: pytest.MonkeyPatch, launch_file: str, argument: str, value: str, message: str
) -> None:
    module = load_launch_file(launch_file, monkeypatch)
    start, arguments = (
        (module._nodes, BRAIN_ARGUMENTS)
        if launch_file == "brain.launch.py"
        else (module._robot_and_brain, module.SIM_ARGUMENTS)
    )
    with pytest.raises(ConfigError, match=rf"launch argument {message}"):
        start(launch_context(module, arguments, **{argument: value}))


def test_plan_timing_arguments_reach_the_planner_only_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    given = launch_context(brain, BRAIN_ARGUMENTS, separate_processes="true", replan_every="5", plan_ahead="false")
    (group,) = brain._nodes(given)
    nodes = {node.kwargs["executable"]: node.kwargs for node in group.args[0][1:]}
    assert nodes["planner"]["parameters"][1] == {"replan_every": 5, "plan_ahead": False}
    assert nodes["configurator"]["parameters"][1] == {}
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, plan_ahead="True"))
    assert group.args[0][1].kwargs["parameters"][1] == {"plan_ahead": True}
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS))
    assert group.args[0][1].kwargs["parameters"][1] == {}, "left empty, the settings decide"
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, replan_every="8"))
    assert group.args[0][1].kwargs["parameters"][1] == {"replan_every": 8}, "the settings file's horizon may be 8+"
    sim = load_launch_file("sim.launch.py", monkeypatch)
    assert {"replan_every", "plan_ahead"} <= set(sim.BRAIN_PASSED)


def test_sim_launch_checks_the_robot_arguments_like_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = load_launch_file("sim.launch.py", monkeypatch)
    robot, _ = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS, env="pusht", rate_hz="20"))
    assert robot.kwargs["parameters"][1] == {"env": "pusht", "rate_hz": 20.0, "goal_offset": 0, "step_budget": 0}
    robot, _ = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS, goal_offset="100", step_budget="150"))
    assert robot.kwargs["parameters"][1]["goal_offset"] == 100 and robot.kwargs["parameters"][1]["step_budget"] == 150


def test_sim_launch_drives_each_robot_with_its_own_model_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from ami_robot.checkpoints import shipped_checkpoint

    sim = load_launch_file("sim.launch.py", monkeypatch)

    def checkpoint(**given: str) -> object:
        _, include = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS, **given))
        return dict(include.kwargs["launch_arguments"])["checkpoint"]

    for env in ("tworoom", "pusht", "reacher"):
        assert checkpoint(env=env) == str(shipped_checkpoint(env))
    assert checkpoint(env="pusht", checkpoint="/models/mine") == "/models/mine"
    assert checkpoint(env="pusht", settings_file="/models/brain.yaml") == "", "the settings file's checkpoint decides"


def test_sim_launch_gives_the_shipped_model_its_own_real_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = load_launch_file("sim.launch.py", monkeypatch)
    params = REPO / "launch" / "params"

    def params_file(**given: str) -> object:
        context = launch_context(sim, sim.SIM_ARGUMENTS, params_file="")
        _, include = sim._robot_and_brain({**context, **given})
        return dict(include.kwargs["launch_arguments"])["params_file"]

    assert params_file(env="pusht") == str(params / "brain_pusht.yaml")
    assert params_file(env="tworoom") == params_file(env="reacher") == str(params / "brain.yaml")
    assert params_file(env="pusht", checkpoint="/models/mine") == str(params / "brain.yaml"), "another model"
    assert params_file(env="pusht", params_file="/mine.yaml") == "/mine.yaml"


def test_record_argument_adds_the_recorder_to_either_launch_file(monkeypatch: pytest.MonkeyPatch) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, record="/tmp/run1"))
    nodes = {node.kwargs["executable"]: node.kwargs for node in group.args[0][1:]}
    assert set(nodes) == {"brain", "recorder"}
    assert nodes["recorder"]["parameters"] == [{"path": "/tmp/run1"}]
    assert "record" in load_launch_file("sim.launch.py", monkeypatch).BRAIN_PASSED


def remappings_of(node: _Action) -> dict[str, str]:
    return dict(node.kwargs["remappings"])


def test_foxglove_argument_adds_the_live_view_to_either_launch_file(monkeypatch: pytest.MonkeyPatch) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, foxglove="8765"))
    nodes = {node.kwargs["executable"]: node.kwargs for node in group.args[0][1:]}
    assert set(nodes) == {"brain", "foxglove"}
    assert nodes["foxglove"]["parameters"] == [{"port": 8765}]
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS))
    assert [node.kwargs["executable"] for node in group.args[0][1:]] == ["brain"]
    assert "foxglove" in load_launch_file("sim.launch.py", monkeypatch).BRAIN_PASSED


@pytest.mark.parametrize(
    ("launch_file", "value"), [("brain.launch.py", "web"), ("brain.launch.py", "70000"), ("sim.launch.py", "-1")]
)
def test_a_bad_foxglove_port_stops_the_launch_before_any_node(
    monkeypatch: pytest.MonkeyPatch, launch_file: str, value: str
) -> None:
    module = load_launch_file(launch_file, monkeypatch)
    if launch_file == "brain.launch.py":
        start, arguments = module._nodes, BRAIN_ARGUMENTS
    else:
        start, arguments = module._robot_and_brain, module.SIM_ARGUMENTS
    with pytest.raises(ConfigError, match=r"launch argument foxglove must be a port in 0-65535"):
        start(launch_context(module, arguments, foxglove=value))


@pytest.mark.parametrize("command_type", ["", "twist", "array"])
def test_each_command_type_has_its_own_default_topic(monkeypatch: pytest.MonkeyPatch, command_type: str) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, command_type=command_type))
    (node,) = group.args[0][1:]
    remapped = remappings_of(node)
    assert (remapped["cmd_vel"], remapped["command"]) == ("cmd_vel", "command"), (
        "a Float32MultiArray on the Twist topic (or the reverse) never moves the robot"
    )


def test_command_topics_are_remapped_one_type_each_for_the_brain_and_the_recorder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    brain = load_launch_file("brain.launch.py", monkeypatch)
    given = dict(twist_topic="/base/cmd_vel", array_topic="/arm/command", image_topic="/camera/image_raw")
    (group,) = brain._nodes(launch_context(brain, BRAIN_ARGUMENTS, separate_processes="true", record="/tmp/b", **given))
    for node in group.args[0][1:]:
        remapped, executable = remappings_of(node), node.kwargs["executable"]
        assert (remapped["cmd_vel"], remapped["command"]) == ("/base/cmd_vel", "/arm/command"), executable
        assert remapped["camera/image"] == "/camera/image_raw", executable


def test_sim_launch_gives_the_command_type_to_the_robot_and_the_brain(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = load_launch_file("sim.launch.py", monkeypatch)
    robot, _ = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS, command_type="array"))
    assert robot.kwargs["parameters"][1]["command_type"] == "array"
    assert "command_type" in sim.BRAIN_PASSED
    robot, _ = sim._robot_and_brain(launch_context(sim, sim.SIM_ARGUMENTS))
    assert "command_type" not in robot.kwargs["parameters"][1], "not given: the robot's parameter file decides"
