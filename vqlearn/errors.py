"""The errors a user's mistake can raise: each message names the key or argument, the value and the fix.

They live here, below every other module, so the data registry, the config
schema and the trainer can all raise them without importing each other.
"""


class ConfigError(ValueError):
    """A config that cannot be used; the message names the dotted key and the fix."""


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped before that step changed any weight."""
