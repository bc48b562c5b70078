"""A strict reader of the Prometheus text format 0.0.4, for checking what we render."""

from __future__ import annotations

import re

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{(.*)\}})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Returns ({family: type}, {(name, sorted labels): value}); raises on any deviation."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: Samples = {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"second HELP for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge"), line
            assert name not in types, f"second TYPE for {name}"
            types[name] = kind
        else:
            m = _SAMPLE.fullmatch(line)
            assert m, f"bad sample line {line!r}"
            name, body, value = m.groups()
            assert name in types, f"sample of {name} before its TYPE"
            labels = []
            pos = 0
            while body and pos < len(body):
                lm = _LABEL.match(body, pos)
                assert lm, f"bad labels in {line!r}"
                raw = lm.group(2)
                labels.append((lm.group(1), re.sub(r"\\.", lambda e: _UNESCAPE[e.group()], raw)))
                pos = lm.end()
            key = (name, tuple(sorted(labels)))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = float(value)
    return types, samples
