"""The few exceptions of the supervision core.

Every error the core raises is a `SupervisionError`; the subclasses say which
kind of mistake it was so a shell can react without parsing messages. Messages
are lowercase, without a trailing period, and name the offending value with
`!r` (`runnable name 'Foo' is invalid`, `no node 'root.nope'`).

Validation failures the *runnable* caused in a request (a bad child name, a
run-group on a non-NEW node) are not raised at the shell: the core answers the
request with the error text. They are raised here only by the helpers that
compute that text (e.g. `names.validate_name`).
"""

from __future__ import annotations

__all__ = [
    "IllegalEvent",
    "InvalidName",
    "InvalidPolicy",
    "InvalidSeverity",
    "SupervisionError",
    "UnknownNode",
]


class SupervisionError(Exception):
    """Base class of every error raised by the supervision core."""


class InvalidName(SupervisionError, ValueError):
    """A runnable name, sub-logger name or DN does not have the required form."""


class InvalidPolicy(SupervisionError, ValueError):
    """A restart policy or policy rule has an unknown field or a bad value."""


class InvalidSeverity(SupervisionError, ValueError):
    """A severity name, one-letter code or control socket number names no severity."""


class UnknownNode(SupervisionError, LookupError):
    """An event or query names a DN (or generation) the tree never had."""


class IllegalEvent(SupervisionError):
    """An event that cannot happen in the node's or tree's current state.

    This is a bug of the shell that fed it (e.g. two exits for one start), not
    of a runnable. The tree is left unchanged.
    """
