"""Parsers of programs' own log lines: glog/klog (runsc) and logrus (containerd).

Pure and small: no I/O, no clock (`now` is an argument), no threads. They run in the
child process that reads the bytes, so the root only stores what they produced.

Modules:
    * `line` — `ParseFormat` (raw, glog, logrus, auto), `ParsedLine`.
    * `times` — glog's year inference and RFC 3339 times, with an hour cache.
    * `glog` — `parse_glog`.
    * `logrus` — `parse_logrus` (text and JSON), `unquote`.
    * `logrus_run` — containerd's common logrus text lines, a run at a time,
      column-wise (the same entries as `parse_logrus_text`, faster).
    * `stream` — `StreamParser`: lines of a byte stream into a columnar
      `Batch`, continuation lines attached, bounds enforced.
    * `runsc` — `RunscAttribution`: the pod sandbox and container of each record of
      runsc's debug log, learned from runsc's own lines (the runsc pump's hook).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.logtree.parse.glog import parse_glog
    from actors.logtree.parse.line import MAX_FIELDS, ParsedLine, ParseFormat
    from actors.logtree.parse.logrus import (
        parse_logrus,
        parse_logrus_json,
        parse_logrus_text,
        unquote,
    )
    from actors.logtree.parse.stream import (
        MORE_LIMIT,
        MORE_LINES,
        PARSE_LIMIT,
        Batch,
        StreamParser,
        parse_line,
    )
    from actors.logtree.parse.times import HourCache

__all__ = [
    "MAX_FIELDS",
    "MORE_LIMIT",
    "MORE_LINES",
    "PARSE_LIMIT",
    "Batch",
    "HourCache",
    "ParseFormat",
    "ParsedLine",
    "StreamParser",
    "parse_glog",
    "parse_line",
    "parse_logrus",
    "parse_logrus_json",
    "parse_logrus_text",
    "unquote",
]

#: Where each public name lives; modules load on first use (see `actors.logtree`).
_HOME = {
    "MAX_FIELDS": "line",
    "MORE_LIMIT": "stream",
    "MORE_LINES": "stream",
    "PARSE_LIMIT": "stream",
    "Batch": "stream",
    "HourCache": "times",
    "ParseFormat": "line",
    "ParsedLine": "line",
    "StreamParser": "stream",
    "parse_glog": "glog",
    "parse_line": "stream",
    "parse_logrus": "logrus",
    "parse_logrus_json": "logrus",
    "parse_logrus_text": "logrus",
    "unquote": "logrus",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
