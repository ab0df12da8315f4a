"""The architecture's dependency rules, checked on every import statement (module level or not):

- the brain (`ami_robot/` outside `ros/` and `commands/`) imports neither ROS 2 nor the simulation;
- the simulation outside its `ros/` bridge does not import the brain's ROS edge;
- nothing in the brain's core imports its command-line front ends.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROS_PACKAGES = (
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "std_msgs",
    "sensor_msgs",
    "geometry_msgs",
    "nav_msgs",
    "visualization_msgs",
    "diagnostic_msgs",
    "trajectory_msgs",
    "std_srvs",
    "launch",
    "launch_ros",
    "rosbag2_py",
)


def module_package(path: Path) -> str:
    """The dotted package a source file belongs to ("ami_robot.planning", "ami_sim.ros", ...)."""
    top = ROOT / "sim" if path.is_relative_to(ROOT / "sim") else ROOT
    return ".".join(path.relative_to(top).parts[:-1])


def imported_modules(source: str, package: str) -> set[str]:
    """Every absolute module name an import statement in `source` names (relative imports resolved
    against `package`), wherever the statement stands (module level, function, branch)."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(), module_package(path))


def _starts_with(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _files(folder: str, excluded: tuple[str, ...] = ()) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if not any(f.is_relative_to(ROOT / folder / e) for e in excluded)]


CORE = _files("ami_robot", excluded=("ros", "commands"))
SIM_OUTSIDE_ROS = _files("sim/ami_sim", excluded=("ros",))


def test_the_rules_see_files():
    assert len(CORE) > 20 and len(SIM_OUTSIDE_ROS) > 5


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_neither_ros_nor_the_simulation(path):
    bad = {m for m in imports_of(path) if _starts_with(m, (*ROS_PACKAGES, "ami_sim"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; only ami_robot/ros and ami_robot/commands may"


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_does_not_import_the_command_line(path):
    if path.name in ("cli.py", "__main__.py"):
        pytest.skip("the command-line entry point itself")
    bad = {m for m in imports_of(path) if _starts_with(m, ("ami_robot.commands", "ami_robot.cli"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", SIM_OUTSIDE_ROS, ids=lambda p: str(p.relative_to(ROOT)))
def test_simulation_outside_its_bridge_does_not_import_ros(path):
    bad = {m for m in imports_of(path) if _starts_with(m, (*ROS_PACKAGES, "ami_robot.ros", "ami_sim.ros"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; only sim/ami_sim/ros may"


def test_the_checker_catches_a_violation():
    source = (
        "def f():\n    import rclpy\n    from ..ros import qos\n"
        "    if True:\n        from ami_sim.registry import make_env\n"
    )
    found = imported_modules(source, "ami_robot.planning")
    assert {"rclpy", "ami_sim.registry", "ami_robot.ros", "ami_robot.ros.qos"} <= found
