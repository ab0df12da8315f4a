"""The project's errors: one base, `AmiRobotError`, so a caller can catch everything the brain
raises on purpose in one clause. Each also derives from the built-in it refines (ValueError,
RuntimeError), so code that catches those keeps working.

The command line turns any of them into one line on stderr and exit code 2.
"""

from __future__ import annotations


class AmiRobotError(Exception):
    """Base of every error ami_robot raises on purpose; the message says what and where."""


class ConfigError(AmiRobotError, ValueError):
    """A setting, configuration file or mapping does not match its declaration."""


class CheckpointError(AmiRobotError, RuntimeError):
    """A checkpoint is missing, unreadable, corrupted or inconsistent; the message names the file."""


class BackendUnavailableError(AmiRobotError, RuntimeError):
    """A planner backend was asked for that this build or machine cannot run."""


class ImageError(AmiRobotError, ValueError):
    """A camera frame that must not reach the encoder; the message says what is wrong."""


class DataError(AmiRobotError, ValueError):
    """An episode dataset or recording that cannot be read or used for training."""


class PlanningError(AmiRobotError, ValueError):
    """A plan that cannot be trusted: predictor weights that are not finite, or a cost that is not
    finite although every input is (values too large for float32)."""
