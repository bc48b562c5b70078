"""The one severity vocabulary of node-containerd, with every mapping in one place.

It lives in the pure core because the core is the floor of every area: the tree's
`LogNode` actions, the log tree, the wire, the config's `log.min_severity`, the
CLI's `--severity` and containerd's lifecycle all name a severity with this enum,
and `SEVERITY_NAMES` is the one list of their names.

A leveled entry has one of five severities, ordered ``DEBUG < INFO < WARNING < ERROR <
FATAL``. Everything that names a severity converts through `Severity`:

==========  ====  ==================  ======  ======  =============================
severity    code  Python `logging`  proto   syslog  read from
==========  ====  ==================  ======  ======  =============================
DEBUG       D     DEBUG (10)          4       7       runsc `D`, logrus trace/debug
INFO        I     INFO (20)           0       6       glog `I`, logrus info
WARNING     W     WARNING (30)        1       4       glog `W`, logrus warning/warn
ERROR       E     ERROR (40)          2       3       glog `E`, logrus error
FATAL       F     CRITICAL (50)       3       2       glog `F`, logrus fatal/panic
==========  ====  ==================  ======  ======  =============================

* The integer value is Python `logging`'s level, so comparisons and `logging`
  levels agree; it is never sent anywhere.
* `code` is the one-letter glog code, shown in text output and sent in parsed
  batches (one byte per entry).
* `name` (`"INFO"`) is the msgpack wire form of a leveled entry and the JSON form.
* `proto` is the control socket's enum number (`SEVERITY_DEBUG = 4` came last, so
  older numbers stay).
* `syslog` is the syslog/journald priority, for `<N>` prefixes on stderr.

runsc's `D` lines (its `--debug` output) are DEBUG, a level of their own, below
INFO: `--severity INFO` hides them, and logrus `trace` joins them there.
"""

from __future__ import annotations

import enum

from actors.supervisor.core.errors import InvalidSeverity

__all__ = ["SEVERITY_NAMES", "Severity"]


class Severity(enum.IntEnum):
    """Severity of a leveled entry, ordered `DEBUG < INFO < WARNING < ERROR < FATAL`."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    FATAL = 50

    @property
    def code(self) -> str:
        """The one-letter glog code: `D`, `I`, `W`, `E` or `F`."""
        return self.name[0]

    @property
    def proto(self) -> int:
        """The control socket's enum number (`SEVERITY_<NAME>`)."""
        return _PROTO[self]

    @property
    def syslog(self) -> int:
        """The syslog priority: 7 debug, 6 info, 4 warning, 3 err, 2 crit."""
        return _SYSLOG[self]

    @classmethod
    def from_code(cls, code: str) -> Severity:
        """Returns the severity whose one-letter code is `code`.

        Raises:
            InvalidSeverity: `code` is not one of `D`, `I`, `W`, `E`, `F`.
        """
        try:
            return _BY_CODE[code]
        except (KeyError, TypeError):
            codes = ", ".join(map(repr, _BY_CODE))
            raise InvalidSeverity(
                f"severity code {code!r} is invalid: expected one of {codes}"
            ) from None

    @classmethod
    def from_name(cls, text: str) -> Severity:
        """Returns the severity named `text`, in any case (`"error"`, `"ERROR"`).

        Raises:
            InvalidSeverity: `text` names no severity.
        """
        found = cls.__members__.get(text.upper()) if isinstance(text, str) else None
        if found is None:
            names = ", ".join(SEVERITY_NAMES)
            raise InvalidSeverity(f"severity {text!r} is invalid: use one of {names}")
        return found

    @classmethod
    def from_proto(cls, number: int) -> Severity:
        """Returns the severity of a control socket enum number.

        Raises:
            InvalidSeverity: `number` is not a severity's number.
        """
        try:
            return _BY_PROTO[number]
        except KeyError:
            raise InvalidSeverity(f"severity number {number!r} is invalid") from None

    @classmethod
    def from_logging(cls, levelno: int) -> Severity:
        """Maps a Python `logging` level: CRITICAL and up FATAL, ..., below INFO DEBUG."""
        for severity in (cls.FATAL, cls.ERROR, cls.WARNING, cls.INFO):
            if levelno >= severity:
                return severity
        return cls.DEBUG


_PROTO = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.ERROR: 2,
    Severity.FATAL: 3,
    Severity.DEBUG: 4,
}
_SYSLOG = {
    Severity.DEBUG: 7,
    Severity.INFO: 6,
    Severity.WARNING: 4,
    Severity.ERROR: 3,
    Severity.FATAL: 2,
}
_BY_CODE = {s.code: s for s in Severity}
_BY_PROTO = {number: s for s, number in _PROTO.items()}

#: The severities' names, lowest first: the one list the config, the wire and the
#: CLI check a name against and name in their messages.
SEVERITY_NAMES: tuple[str, ...] = tuple(s.name for s in Severity)
