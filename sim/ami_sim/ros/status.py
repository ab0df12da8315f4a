"""What the simulated robot tells the world, typed, and its encoding on the wire (the only place).

`robot/status` is a diagnostic_msgs/DiagnosticStatus: name `sim_robot`, hardware_id the environment,
message `running`, `done` or `success`, and the KeyValues episode, steps, success, done, distance,
state, goal_state (vectors as comma-separated numbers) and late_steps, readable with `ros2 topic echo`.
The `robot/reset` service is a std_srvs/Trigger whose message reads
`episode 3: start [x, y] goal [x, y]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from std_srvs.srv import Trigger

from ami_robot.errors import AmiRobotError

STATUS_NAME = "sim_robot"
_BOOLS = {"True": True, "False": False}
_RESET_MESSAGE = re.compile(r"episode (\d+): start (\[[^\]]*\]) goal (\[[^\]]*\])")


class RobotMessageError(AmiRobotError, ValueError):
    """A robot status or reset reply that does not decode; says which field and why."""


def _vector(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(x) for x in values)


@dataclass(frozen=True)
class RobotStatus:
    """The robot after its latest step. `episode` is -1 before the first reset; `distance` is the
    environment's goal distance; `state` and `goal_state` are its low-dimensional states;
    `late_steps`: steps of this episode taken before any command answered the previous camera image
    (the brain was late, and the robot acted on an older command)."""

    env: str
    episode: int
    steps: int
    success: bool
    done: bool
    distance: float
    state: tuple[float, ...]
    goal_state: tuple[float, ...]
    late_steps: int = 0

    @property
    def message(self) -> str:
        return "success" if self.success else ("done" if self.done else "running")

    def to_msg(self) -> DiagnosticStatus:
        fields = {
            "episode": str(self.episode),
            "steps": str(self.steps),
            "success": str(self.success),
            "done": str(self.done),
            "distance": repr(self.distance),
            "state": ",".join(repr(x) for x in self.state),
            "goal_state": ",".join(repr(x) for x in self.goal_state),
            "late_steps": str(self.late_steps),
        }
        return DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=STATUS_NAME,
            hardware_id=self.env,
            message=self.message,
            values=[KeyValue(key=key, value=value) for key, value in fields.items()],
        )

    @classmethod
    def from_msg(cls, msg: DiagnosticStatus) -> RobotStatus:
        """Inverse of `to_msg`; raises RobotMessageError for a status that is not the robot's."""
        values = {kv.key: kv.value for kv in msg.values}
        try:
            return cls(
                env=msg.hardware_id,
                episode=int(values["episode"]),
                steps=int(values["steps"]),
                success=_BOOLS[values["success"]],
                done=_BOOLS[values["done"]],
                distance=float(values["distance"]),
                state=_vector(values["state"].split(",")),
                goal_state=_vector(values["goal_state"].split(",")),
                late_steps=int(values["late_steps"]),
            )
        except (KeyError, ValueError) as exc:
            raise RobotMessageError(f"malformed robot status {values}: {exc!r}") from None


@dataclass(frozen=True)
class ResetReply:
    """The robot's answer to `robot/reset`: the episode it started, from `start_state` to `goal_state`."""

    episode: int
    start_state: tuple[float, ...]
    goal_state: tuple[float, ...]

    def to_response(self, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        response.message = (
            f"episode {self.episode}: start {json.dumps(list(self.start_state))} "
            f"goal {json.dumps(list(self.goal_state))}"
        )
        return response

    @classmethod
    def from_response(cls, response: Trigger.Response) -> ResetReply:
        """Inverse of `to_response`; raises RobotMessageError if the robot refused or the reply is malformed."""
        if not response.success:
            raise RobotMessageError(f"the robot refused the reset: {response.message}")
        match = _RESET_MESSAGE.fullmatch(response.message)
        if match is None:
            raise RobotMessageError(f"malformed reset reply {response.message!r}")
        episode, start, goal = match.groups()
        return cls(int(episode), _vector(json.loads(start)), _vector(json.loads(goal)))
