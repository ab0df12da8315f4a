"""`ami-robot record`: record the brain's topics into a ROS 2 bag (MCAP) as they flow.

ami-robot record --out runs/session1 [--topics camera/image,cmd_vel] [--duration 300] [--json PATH]
                 [--take-interval S] [--history-depth N]
ami-robot record --repair runs/session1     # finish a bag whose recorder was killed

Joins the ROS 2 domain in ROS_DOMAIN_ID (DDS kept on this machine, `ami_robot.ros.dds`) and runs
the recorder node (`ami_robot.ros.recorder_node`) until Ctrl-C, SIGTERM or --duration; then
prints the messages written per topic. The bag opens with `ros2 bag info/play`, Foxglove, the
`mcap` tools, rosbags, and `ami-robot train --bag`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ami_robot.data.bag_writer import RecordingStats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument(
        "--topics", default="", help="comma-separated topics (default: the brain's camera, goal, commands, plan, ...)"
    )
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to record (default: until Ctrl-C)")
    parser.add_argument("--namespace", default="", help="namespace the relative topic names resolve in")
    parser.add_argument(
        "--take-interval",
        type=float,
        default=None,
        metavar="S",
        help="seconds between takes of what has arrived (the recorder parameter take_interval_s)",
    )
    parser.add_argument(
        "--history-depth",
        type=int,
        default=None,
        metavar="N",
        help="messages each topic keeps between two takes (the recorder parameter history_depth)",
    )
    parser.add_argument("--json", type=Path, help="write the message counts per topic here")
    parser.add_argument("--repair", type=Path, metavar="BAG", help="finish a bag whose recorder was killed, and exit")


def run(args: argparse.Namespace) -> int:
    if args.repair is not None:
        from ami_robot.data.bag_writer import repair_bag

        return _report(args.repair, repair_bag(args.repair), args.json)
    if args.out is None:
        print("ami-robot record: --out BAG (or --repair BAG) is required", file=sys.stderr)
        return 2
    if args.duration < 0:
        print("ami-robot record: --duration must be >= 0", file=sys.stderr)
        return 2
    if not (os.environ.get("ROS_DOMAIN_ID") or os.environ.get("AMI_ROBOT_DOMAIN_ID")):
        print("ami-robot record: set ROS_DOMAIN_ID to the domain of the robot to record", file=sys.stderr)
        return 2
    from ami_robot.ros.dds import apply_localhost_environment

    domain_id = apply_localhost_environment()
    from rclpy.parameter import Parameter

    from ami_robot.ros.recorder_node import RecorderNode
    from ami_robot.ros.runtime import serve

    out = args.out.expanduser().resolve()
    overrides = [Parameter("path", value=str(out)), Parameter("duration_s", value=float(args.duration))]
    if args.topics:
        overrides.append(Parameter("topics", value=args.topics))
    if args.take_interval is not None:
        overrides.append(Parameter("take_interval_s", value=float(args.take_interval)))
    if args.history_depth is not None:
        overrides.append(Parameter("history_depth", value=int(args.history_depth)))
    recorders: list[RecorderNode] = []

    def recorder() -> RecorderNode:
        recorders.append(RecorderNode(namespace=args.namespace, parameter_overrides=overrides))
        return recorders[-1]

    print(f"ami-robot record: ROS 2 domain {domain_id} (localhost only) into {out}; Ctrl-C to stop", file=sys.stderr)
    code = serve([recorder], argv=[])
    if not recorders or recorders[0].stats is None:
        return code or 1
    return code or _report(out, recorders[0].stats, args.json)


def _report(path: Path, stats: RecordingStats, json_path: Path | None) -> int:
    print(f"{path}:\n{stats.summary() or '(no messages)'}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps({"bag": str(path), "messages": dict(stats.written), "dropped": dict(stats.dropped)}, indent=2)
        )
    return 0
