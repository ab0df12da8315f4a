"""The launch files, parameter files and ROS 2 package metadata agree with the code, checked
statically (ROS 2 launch itself is not installed here; see test_launch_ros.py)."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from ami_robot.ros.params import NODE_PARAMETERS as BRAIN_NODE_PARAMETERS
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


def test_launch_files_reference_existing_parameter_files_and_arguments() -> None:
    for path in LAUNCH_FILES:
        for name in re.findall(r'"(\w+\.yaml)"', path.read_text()):
            assert (REPO / "launch" / "params" / name).is_file(), f"{path.name} refers to a missing {name}"
    brain = module_constants(ast.parse((REPO / "launch" / "brain.launch.py").read_text()))
    brain_arguments = set(brain["ARGUMENTS"]) | {"params_file"}
    sim = ast.parse((REPO / "launch" / "sim.launch.py").read_text())
    for node in ast.walk(sim):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "IncludeLaunchDescription":
            passed = {
                k.value for k in next(kw.value for kw in node.keywords if kw.arg == "launch_arguments").func.value.keys
            }
            assert passed <= brain_arguments, passed - brain_arguments


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
        for name, value in flatten(section["ros__parameters"] or {}).items():
            assert name in declared, f"{path.name}: {node} does not declare {name!r}"
            assert same_type(value, declared[name]), (
                f"{path.name}: {node}.{name} = {value!r} has another type than its default {declared[name]!r}"
            )
