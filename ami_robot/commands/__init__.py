"""Sub-commands of `ami-robot`: each module has `add_arguments(parser)` and `run(args) -> int`."""
