"""`ConfigError`: a config file that cannot be used, with every problem.

Apart from the schema (which re-exports it) so that a command can catch it without
loading the config's machinery (`actors.agent.locate`).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is every problem, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        #: One message per problem, each naming the file, the dotted key, the offending value
        #: (`!r`) and what is allowed.
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))
