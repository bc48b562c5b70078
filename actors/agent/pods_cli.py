"""`pods`, `ps`, `images`, `inspect`, `logs-of`, `stopp`, `rmp`: CRI for the operator, like crictl.

There is no crictl in Debian; these commands talk CRI (`runtime.v1`) with the
project's own client (`actors.containerd.api.cri`) to the running agent's
containerd, found as every command finds the agent (`actors.agent.locate`). Each
has `--json`.

    pods              every pod sandbox: ID, name, namespace, state, runtime, age
    ps [-a]           containers (running ones; `-a` all): ID, image, name, state, pod
    images            images of CRI's namespace `k8s.io`: name, tag, ID, size
    inspect ID        a pod, container or image: a summary, or (`--json`) CRI's
                      verbose status and containerd's info
    logs-of C [-f]    a container's output, read from its CRI log file
    stopp POD...      stop pods (their containers, then the sandbox)
    rmp POD...        stop and remove pods

An ID may be abbreviated to any unique prefix; a pod or container may also be
named by its name, an image by its reference. Exit codes: 0 ok; 1 a CRI call
failed, or no (or more than one) object has that ID; 2 bad usage or several agents
and none chosen; 3 the agent is not running; 4 its control socket is not ours.

The module imports neither grpc nor the CRI messages until a command runs, so the
parsers cost nothing to `--help`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from actors.exit_codes import ExitCode, exit_codes_help

if TYPE_CHECKING:
    from actors.containerd.api.cri import CriClient

__all__ = ["COMMANDS", "add_parsers", "parse_cri_log_line"]

#: The commands, in the order `--help` lists them.
COMMANDS = ("pods", "ps", "images", "inspect", "logs-of", "stopp", "rmp")

_EXIT_CODES = exit_codes_help(
    {
        ExitCode.OK: "ok",
        ExitCode.FAILURE: "a CRI call failed, or no (or more than one) object has that ID",
        ExitCode.USAGE: "bad usage, or several agents running and none chosen",
        ExitCode.NOT_RUNNING: "the agent is not running",
        ExitCode.NOT_OURS: "what answers on the control socket is not a node-containerd agent",
    }
)
#: How often `logs-of -f` looks for new output, in seconds.
_POLL = 0.2

Handler = Callable[[argparse.Namespace], int]


class _Failed(Exception):
    """Ends a command with exit 1 and this text on stderr."""


def add_parsers(commands: Any, agent_options: Callable[[Any], None]) -> None:
    """Registers the commands on the top-level CLI's subparsers.

    Args:
        commands: the subparsers object.
        agent_options: adds `--config` and `--state` (which agent) to a group.
    """

    def sub(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--json", action="store_true", help="print JSON")
        agent_options(p.add_argument_group("agent"))
        return p

    sub("pods", "list the pods (CRI)", "List every pod sandbox of the agent's containerd.")
    p = sub("ps", "list the containers (CRI)", "List the containers (running ones by default).")
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    sub("images", "list the images (CRI)", "List the images of CRI's namespace k8s.io.")
    p = sub(
        "inspect",
        "show a pod, container or image (CRI)",
        "Show a pod, container or image: a summary, or with --json CRI's verbose\n"
        "status and containerd's info. ID: an ID or unique prefix, a pod's or\n"
        "container's name, or an image's reference.",
    )
    p.add_argument("id", metavar="ID")
    p = sub(
        "logs-of",
        "show a container's output (CRI log)",
        "Show a container's output, from its CRI log file: one line per line it\n"
        "wrote (--json: its time and stream too).",
    )
    p.add_argument("container", metavar="CONTAINER", help="an ID, unique prefix or name")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it exits")
    p.add_argument("-n", "--tail", type=int, default=None, metavar="N", help="the last N lines")
    p = sub("stopp", "stop pods (CRI)", "Stop pods: their containers, then their sandboxes.")
    p.add_argument("pods", nargs="+", metavar="POD", help="an ID, unique prefix or name")
    p = sub("rmp", "stop and remove pods (CRI)", "Stop and remove pods and their containers.")
    p.add_argument("pods", nargs="+", metavar="POD", help="an ID, unique prefix or name")
    handlers: dict[str, Callable[[argparse.Namespace, CriClient], int]] = {
        "pods": _pods,
        "ps": _ps,
        "images": _images,
        "inspect": _inspect,
        "logs-of": _logs_of,
        "stopp": _stopp,
        "rmp": _rmp,
    }
    for name, run in handlers.items():
        commands.choices[name].set_defaults(handler=_with_client(run))


def _with_client(run: Callable[[argparse.Namespace, CriClient], int]) -> Handler:
    """A handler that finds the agent's containerd, then runs `run` with a CRI client."""

    def handler(args: argparse.Namespace) -> int:
        from actors.agent.locate import agent_containerd
        from actors.containerd.api.cri import CriClient, CriError

        address = agent_containerd(args)
        if isinstance(address, int):
            return address
        client = CriClient(address, timeout=30.0)
        try:
            return run(args, client)
        except (CriError, _Failed) as e:
            sys.stdout.flush()
            print(f"node-containerd: {e}", file=sys.stderr)
            return ExitCode.FAILURE
        finally:
            client.close()

    return handler


# ---------------------------------------------------------------- listing


def _pods(args: argparse.Namespace, client: CriClient) -> int:
    from messages.cri.runtime.v1 import api_pb2 as cri

    pods = client.list_pods()
    rows = [
        {
            "id": p.id,
            "name": p.metadata.name,
            "namespace": p.metadata.namespace,
            "uid": p.metadata.uid,
            "attempt": p.metadata.attempt,
            "state": cri.PodSandboxState.Name(p.state).removeprefix("SANDBOX_"),
            "runtime_handler": p.runtime_handler,
            "created_at": p.created_at,
            "labels": dict(p.labels),
            "annotations": dict(p.annotations),
        }
        for p in pods
    ]
    if args.json:
        return _print_json({"pods": rows})
    table = [
        (r["id"][:13], r["name"], r["namespace"], r["state"], r["runtime_handler"] or "-", _age(r))
        for r in rows
    ]
    return _print_table(("POD ID", "NAME", "NAMESPACE", "STATE", "RUNTIME", "CREATED"), table)


def _ps(args: argparse.Namespace, client: CriClient) -> int:
    from messages.cri.runtime.v1 import api_pb2 as cri

    containers = client.list_containers()
    rows = [
        {
            "id": c.id,
            "pod_id": c.pod_sandbox_id,
            "name": c.metadata.name,
            "attempt": c.metadata.attempt,
            "image": c.image.image,
            "image_ref": c.image_ref,
            "state": cri.ContainerState.Name(c.state).removeprefix("CONTAINER_"),
            "created_at": c.created_at,
            "labels": dict(c.labels),
            "annotations": dict(c.annotations),
        }
        for c in containers
        if args.all or c.state == cri.CONTAINER_RUNNING
    ]
    if args.json:
        return _print_json({"containers": rows})
    table = [
        (r["id"][:13], r["image"], r["name"], r["state"], r["pod_id"][:13], _age(r)) for r in rows
    ]
    return _print_table(("CONTAINER", "IMAGE", "NAME", "STATE", "POD ID", "CREATED"), table)


def _images(args: argparse.Namespace, client: CriClient) -> int:
    images = client.list_images()
    rows: list[dict[str, Any]] = [
        {
            "id": i.id,
            "repo_tags": list(i.repo_tags),
            "repo_digests": list(i.repo_digests),
            "size": i.size,
        }
        for i in images
    ]
    if args.json:
        return _print_json({"images": rows})
    table = []
    for r in rows:
        for name, tag in _names(r["repo_tags"], r["repo_digests"]):
            table.append((name, tag, r["id"].removeprefix("sha256:")[:13], _size(r["size"])))
    return _print_table(("IMAGE", "TAG", "IMAGE ID", "SIZE"), table)


def _names(tags: list[str], digests: list[str]) -> Iterator[tuple[str, str]]:
    """(repository, tag) per tag; `<none>` when the image has none."""
    for ref in tags:
        slash = ref.rfind("/")
        colon = ref.rfind(":")
        yield (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, "<none>")
    if not tags:
        yield (digests[0].partition("@")[0] if digests else "<none>", "<none>")


# ---------------------------------------------------------------- one object


def _find(client: CriClient, wanted: str, kinds: Sequence[str]) -> tuple[str, str]:
    """(kind, full ID) of the one pod, container or image `wanted` names.

    Raises:
        _Failed: none or several.
    """
    found: dict[tuple[str, str], None] = {}
    if "pod" in kinds:
        for p in client.list_pods():
            if p.id.startswith(wanted) or p.metadata.name == wanted:
                found[("pod", p.id)] = None
    if "container" in kinds:
        for c in client.list_containers():
            if c.id.startswith(wanted) or c.metadata.name == wanted:
                found[("container", c.id)] = None
    if "image" in kinds:
        for i in client.list_images():
            short = i.id.removeprefix("sha256:")
            if wanted in (*i.repo_tags, *i.repo_digests) or (
                len(wanted) >= 4 and (i.id.startswith(wanted) or short.startswith(wanted))
            ):
                found[("image", i.id)] = None
    what = " or ".join(kinds)
    if not found:
        raise _Failed(f"no {what} {wanted!r}")
    if len(found) > 1:
        listed = ", ".join(f"{kind} {ident[:13]}" for kind, ident in found)
        raise _Failed(f"{wanted!r} names more than one {what}: {listed}; give more of the ID")
    return next(iter(found))


def _inspect(args: argparse.Namespace, client: CriClient) -> int:
    from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

    kind, ident = _find(client, args.id, ("pod", "container", "image"))
    reply: Any
    if kind == "pod":
        reply = client.pod_status(ident)
    elif kind == "container":
        reply = client.container_status_verbose(ident)
    else:
        reply = client.image_status(ident)
    message = reply.image if kind == "image" else reply.status
    status = MessageToDict(message, preserving_proto_field_name=True)
    info = {key: _maybe_json(value) for key, value in reply.info.items()}
    if args.json:
        return _print_json({"kind": kind, "id": ident, "status": status, "info": info})
    print(f"{kind} {ident}")
    for key, value in _summary(kind, status):
        print(f"  {key + ':':<10} {value}")
    return ExitCode.OK


def _summary(kind: str, status: dict[str, Any]) -> Iterator[tuple[str, str]]:
    meta = status.get("metadata", {})
    if kind == "image":
        yield "tags", ", ".join(status.get("repo_tags", [])) or "<none>"
        yield "digests", ", ".join(status.get("repo_digests", [])) or "<none>"
        yield "size", _size(int(status.get("size", 0)))
        return
    yield "name", meta.get("name", "")
    if kind == "pod":
        yield "namespace", meta.get("namespace", "")
        yield "state", str(status.get("state", "SANDBOX_READY")).removeprefix("SANDBOX_")
        yield "runtime", status.get("runtime_handler") or "-"
    else:
        yield "image", status.get("image", {}).get("image", "")
        yield "state", str(status.get("state", "CONTAINER_CREATED")).removeprefix("CONTAINER_")
        if "exit_code" in status or status.get("finished_at"):
            yield "exit code", str(status.get("exit_code", 0))
        yield "log", status.get("log_path", "") or "-"
    yield "created", _age({"created_at": int(status.get("created_at", 0))})


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- logs


def parse_cri_log_line(line: str) -> tuple[str, str, bool, str]:
    """`(time, stream, complete, text)` of one CRI log line (`<time> <stream> <F|P> <text>`).

    A line that does not follow the format is returned whole as complete stdout text.
    """
    parts = line.split(" ", 3)
    if len(parts) >= 3 and parts[1] in ("stdout", "stderr") and parts[2] in ("F", "P"):
        return parts[0], parts[1], parts[2] == "F", parts[3] if len(parts) == 4 else ""
    return "", "stdout", True, line


class _LogLines:
    """Joins a CRI log's partial lines into whole ones."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.pending = ""

    def render(self, raw: str) -> str | None:
        when, stream, complete, text = parse_cri_log_line(raw)
        self.pending += text
        if not complete:
            return None
        text, self.pending = self.pending, ""
        if self.as_json:
            return json.dumps({"time": when, "stream": stream, "line": text})
        return text


def _logs_of(args: argparse.Namespace, client: CriClient) -> int:
    from messages.cri.runtime.v1 import api_pb2 as cri

    _, ident = _find(client, args.container, ("container",))
    path = client.container_status(ident).log_path
    if not path:
        raise _Failed(f"container {ident[:13]} has no log file")
    lines = _LogLines(args.json)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            shown = [s for s in map(lines.render, f.read().splitlines()) if s is not None]
            if args.tail is not None:
                shown = shown[len(shown) - args.tail :] if args.tail else []
            _write(shown)
            while args.follow:
                rest = f.read()
                if rest:
                    _write([s for s in map(lines.render, rest.splitlines()) if s is not None])
                elif client.container_status(ident).state != cri.CONTAINER_RUNNING:
                    return ExitCode.OK
                else:
                    time.sleep(_POLL)
    except FileNotFoundError as e:
        raise _Failed(f"container {ident[:13]}'s log file {path!r} is gone") from e
    except KeyboardInterrupt:
        return ExitCode.OK
    return ExitCode.OK


def _write(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


# ---------------------------------------------------------------- stop, remove


def _stopp(args: argparse.Namespace, client: CriClient) -> int:
    ids = [_find(client, p, ("pod",))[1] for p in args.pods]
    for ident in ids:
        client.stop_pod(ident)
        if not args.json:
            print(f"stopped pod {ident}")
    return _print_json({"stopped": ids}) if args.json else ExitCode.OK


def _rmp(args: argparse.Namespace, client: CriClient) -> int:
    ids = [_find(client, p, ("pod",))[1] for p in args.pods]
    for ident in ids:
        client.stop_pod(ident)
        client.remove_pod(ident)
        if not args.json:
            print(f"removed pod {ident}")
    return _print_json({"removed": ids}) if args.json else ExitCode.OK


# ---------------------------------------------------------------- output


def _print_json(doc: object) -> int:
    print(json.dumps(doc))
    return ExitCode.OK


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(f"{str(v):<{w}}" for v, w in zip(row, widths, strict=True)).rstrip())
    return ExitCode.OK


def _age(row: dict[str, Any]) -> str:
    """`3m07s ago` from a CRI `created_at` in nanoseconds."""
    created = int(row.get("created_at", 0))
    if not created:
        return "-"
    seconds = max(0, int(time.time() - created / 1e9))
    if seconds < 60:
        text = f"{seconds}s"
    elif seconds < 3600:
        text = f"{seconds // 60}m{seconds % 60:02d}s"
    elif seconds < 86400:
        text = f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    else:
        text = f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    return f"{text} ago"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"
