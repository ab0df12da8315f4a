"""The `ami-robot` command line: one sub-command per long job, each in `ami_robot/commands/`.

Every command reports a problem it was built to expect (any `AmiRobotError`: a bad setting, file,
checkpoint, dataset or backend) as one line on stderr, `ami-robot COMMAND: error: MESSAGE`, and
exits with code 2, as argparse does for a bad option.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from ami_robot.errors import AmiRobotError
from ami_robot.runtime import configure_logging

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("ami_robot.commands.collect", "collect episodes from a simulated robot into a dataset"),
    "train": ("ami_robot.commands.train", "train the encoder and world model on a dataset"),
    "eval": ("ami_robot.commands.evaluate", "goal-conditioned evaluation of a policy or the planner"),
    "bench": ("ami_robot.commands.bench", "benchmark the planner backends"),
    "demo": ("ami_robot.commands.demo", "drive a simulated robot with the brain over ROS 2"),
    "record": ("ami_robot.commands.record", "record the brain's topics into a ROS 2 bag (MCAP)"),
    "info": ("ami_robot.commands.info", "what a checkpoint holds: model, critic, bounds, metrics, data, checksum"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only `command`'s module is imported (each may import torch)."""
    parser = argparse.ArgumentParser(prog="ami-robot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).add_arguments(cmd_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Long jobs stop cleanly on Ctrl-C, also when started with SIGINT ignored (a shell's background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    configure_logging()
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except AmiRobotError as exc:
        print(f"ami-robot {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2


def one_line(message: str) -> str:
    """`message` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
