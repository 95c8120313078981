"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class NeuroDeployError(Exception):
    """A problem with the user's input (file, shape, architecture...), stated in one line."""
