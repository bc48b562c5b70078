"""One-shot commands on the importer's code path: `import` and `preseed`.

`add_parsers(subparsers)` registers both on an argparse sub-parser set (the
agent's top-level CLI owns the parser); it loads nothing of the importer, which the
commands import when they run (a running agent may run `import` for the CLI, see
`actors.agent.control.plain`). Each sets `func` to a callable that takes
the parsed arguments and returns the exit code (`actors.exit_codes.ExitCode`): OK
when every file was imported, FAILURE when any failed (each failure is printed
with its reason), USAGE for usage errors (argparse itself exits with 2 on those).

With `--json`, stdout is one JSON object: per file the images created (name,
target digest, media type) or the error, and the warnings.

On a terminal, stderr shows one progress line while a file is imported (the file,
bytes, rate: `actors.preseed.progress`), erased before each result; piped or
redirected, nothing but the results is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from actors.exit_codes import ExitCode

if TYPE_CHECKING:
    from actors.preseed.importer.results import ImportResult
    from actors.preseed.progress import TerminalProgress

__all__ = ["add_parsers", "main"]

_IMPORT_HELP = """\
Import image archives into containerd, through its gRPC API, with the semantics of
containerd's Go client.Import: OCI image layouts and `docker save` tarballs, optionally
gzip- or zstd-compressed. Images are created, or updated if they exist. Every digest is
verified; blobs containerd already has are not sent again; a bad archive leaves nothing
behind. Exit status: 0 if every file was imported, 1 if any failed, 2 on usage errors."""

_PRESEED_HELP = """\
Import every archive found at DIR/<namespace>/<file> into that containerd namespace
(k8s.io is the one Kubernetes sees), as the agent's preseed step does at start-up. A
non-directory at the top of DIR and a directory inside a namespace directory are
ignored with a warning. With --record, files imported before that are unchanged, and
whose images containerd still has, are skipped. Exit status: 0 if every file was
imported, 1 if any failed, 2 on usage errors."""


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not of the form KEY=VALUE")
    return key, value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        metavar="SOCK",
        help="path of containerd's gRPC socket (default: the running agent's containerd)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: per file the images created, or the error",
    )
    parser.add_argument(
        "--unpack",
        action="store_true",
        help="also unpack each image for this host into the snapshotter (as ctr does)",
    )
    parser.add_argument(
        "--snapshotter",
        default="overlayfs",
        metavar="NAME",
        help="the snapshotter to unpack into (default: %(default)s, CRI's)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="deadline of each containerd call (default: %(default)s)",
    )


def add_parsers(
    subparsers: Any, formatter_class: type[argparse.HelpFormatter] | None = None
) -> None:
    """Register the `import` and `preseed` commands on an argparse subparsers object.

    Args:
        subparsers: where to add them.
        formatter_class: their help formatter (default: argparse's
            `RawDescriptionHelpFormatter`; the agent's CLI gives its own, which loads less).
    """
    formatter_class = formatter_class or argparse.RawDescriptionHelpFormatter
    imp = subparsers.add_parser(
        "import",
        help="import image archives into a containerd namespace",
        description=_IMPORT_HELP,
        formatter_class=formatter_class,
    )
    _common(imp)
    imp.add_argument(
        "--namespace",
        default="k8s.io",
        metavar="NS",
        help="containerd namespace to import into (default: %(default)s, the one CRI sees)",
    )
    imp.add_argument(
        "--all-platforms",
        action="store_true",
        help="import every platform of multi-platform images (default: this host's)",
    )
    imp.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="import this platform instead of the host's"
    )
    imp.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out blobs the archive lacks instead of failing",
    )
    imp.add_argument(
        "--label",
        action="append",
        type=_label,
        default=[],
        metavar="K=V",
        help="set this label on every image (repeatable), e.g. io.cri-containerd.pinned=pinned",
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help="image archives to import")
    imp.set_defaults(func=run_import)

    pre = subparsers.add_parser(
        "preseed",
        help="import every archive of a preseed directory",
        description=_PRESEED_HELP,
        formatter_class=formatter_class,
    )
    _common(pre)
    pre.add_argument("--dir", required=True, metavar="DIR", help="the preseed directory")
    pre.add_argument(
        "--record",
        metavar="FILE",
        help="import record to skip unchanged files with (JSON, created if absent)",
    )
    pre.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="import N tarballs at once (default: %(default)s)",
    )
    pre.add_argument(
        "--pin",
        action="store_true",
        help="pin every image (io.cri-containerd.pinned) and unpin those of removed tarballs",
    )
    pre.set_defaults(func=run_preseed)


def _entry(result: ImportResult) -> dict[str, object]:
    from actors.preseed.importer.archive_import import display_name

    return {
        "file": display_name(result.namespace, result.path),
        "path": result.path,
        "namespace": result.namespace,
        "ok": True,
        "unchanged": result.unchanged,
        "images": [
            {"name": i.name, "target_digest": i.target_digest, "media_type": i.media_type}
            for i in result.images
        ],
        "bytes_sent": result.bytes_sent,
        "warnings": list(result.warnings),
        "error": None,
    }


def _emit(
    entries: list[dict[str, object]],
    warnings: Sequence[str],
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    failed = any(not e["ok"] for e in entries)
    if as_json:
        json.dump({"ok": not failed, "files": entries, "warnings": list(warnings)}, out, indent=2)
        out.write("\n")
    else:
        err.writelines(f"warning: {text}\n" for text in warnings)
        for entry in entries:
            if not entry["ok"]:
                err.write(f"error: {entry['error']}\n")
    return ExitCode.FAILURE if failed else ExitCode.OK


def _no_address(err: TextIO) -> int:
    err.write("error: no containerd to import into: give --address SOCK\n")
    return ExitCode.USAGE


def run_import(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run `import` with parsed arguments; return the exit code."""
    from actors.containerd.api.client import ContainerdClient
    from actors.preseed.errors import PreseedError
    from actors.preseed.importer.archive_import import display_name, import_archive
    from actors.preseed.importer.options import ImportOptions
    from actors.preseed.service.directory import describe

    try:
        options = ImportOptions(
            all_platforms=args.all_platforms,
            skip_missing=args.skip_missing,
            labels=dict(args.label),
            platform=args.platform,
            unpack=args.unpack,
            snapshotter=args.snapshotter,
        )
    except ValueError as e:
        err.write(f"error: {e}\n")
        return ExitCode.USAGE
    if args.address is None:
        return _no_address(err)
    entries: list[dict[str, object]] = []
    bar = _progress_line(err)
    with ContainerdClient(args.address, timeout=args.timeout) as client:
        for path in args.files:
            file = display_name(args.namespace, path)
            try:
                result = import_archive(
                    client,
                    path,
                    namespace=args.namespace,
                    options=options,
                    progress=None if bar is None else bar.callback(file),
                )
            except PreseedError as e:
                if bar is not None:
                    bar.clear()
                entries.append(
                    {
                        "file": display_name(args.namespace, path),
                        "path": path,
                        "namespace": args.namespace,
                        "ok": False,
                        "images": [],
                        "error": str(e),
                    }
                )
                continue
            entries.append(_entry(result))
            if bar is not None:
                bar.clear()
            if not args.json:
                out.write(describe(result) + "\n")
    return _emit(entries, [], args.json, out, err)


def _progress_line(err: TextIO) -> TerminalProgress | None:
    """A progress line on `err` when it is a terminal; None when piped or a file."""
    from actors.preseed.progress import TerminalProgress

    try:
        return TerminalProgress(err) if err.isatty() else None
    except (AttributeError, ValueError):  # a closed or replaced stream
        return None


def run_preseed(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run `preseed` with parsed arguments; return the exit code."""
    import logging

    from actors.containerd.api.client import ContainerdClient
    from actors.preseed.errors import FAILURES
    from actors.preseed.importer.options import ImportOptions
    from actors.preseed.service.directory import describe, preseed_dir

    log = logging.getLogger("actors.preseed.cli")
    if args.address is None:
        return _no_address(err)
    bar = _progress_line(err)
    with ContainerdClient(args.address, timeout=args.timeout) as client:
        try:
            report = preseed_dir(
                client,
                args.dir,
                options=ImportOptions(unpack=args.unpack, snapshotter=args.snapshotter),
                record_path=args.record,
                log=log,
                parallel=max(1, args.parallel),
                pin=args.pin,
                progress=None if bar is None else bar.update,
            )
        except FAILURES as e:
            err.write(f"error: {e}\n")
            return ExitCode.FAILURE
        finally:
            if bar is not None:
                bar.clear()
    entries = [_entry(r) for r in report.results]
    entries += [
        {"file": file, "ok": False, "images": [], "error": text} for file, text in report.failures
    ]
    if not args.json:
        out.writelines(describe(result) + "\n" for result in report.results)
    return _emit(entries, report.warnings, args.json, out, err)


def main(argv: Sequence[str] | None = None) -> int:
    """A stand-alone entry point: `python -m actors.preseed.cli import|preseed …`."""
    parser = argparse.ArgumentParser(prog="node-containerd")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
