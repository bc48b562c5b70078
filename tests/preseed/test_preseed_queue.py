"""The pure parts of the long-running preseed: when a file is complete, and the import queue."""

from __future__ import annotations

from actors.preseed.service.actor import ImportQueue
from actors.preseed.service.directory import import_order
from actors.preseed.service.preseeder import PreseedFile
from actors.preseed.service.watch import Settler


def _f(name: str, namespace: str = "k8s.io") -> PreseedFile:
    return PreseedFile(namespace, name, f"/p/{namespace}/{name}")


def test_a_file_closed_after_each_piece_is_ready_once_after_the_last_piece_and_quiet() -> None:
    s = Settler(quiet=0.5)
    key = ("k8s.io", "a.tar")
    for t in (0.0, 0.25, 0.5, 0.75):
        s.written(key, t)
        s.completed(key, t + 0.125)
        assert s.due(t + 0.25) == []

    assert s.next_deadline() == 1.375
    assert s.due(1.25) == []
    assert s.due(1.375) == [key]
    assert s.due(5.0) == []


def test_a_file_still_open_for_writing_is_never_ready_but_reported_stalled_once() -> None:
    s = Settler(quiet=0.5, stall=30.0)
    s.written(("k8s.io", "a.tar"), 0.0)
    assert s.next_deadline() == 30.0
    assert s.stalled(29.9) == []
    assert s.stalled(30.0) == [("k8s.io", "a.tar")]
    assert s.next_deadline() is None
    assert s.stalled(3600.0) == []
    assert s.due(3600.0) == []
    s.written(("k8s.io", "a.tar"), 3600.0)  # written again: reported again when silent again
    assert s.stalled(3630.0) == [("k8s.io", "a.tar")]
    s.completed(("k8s.io", "a.tar"), 3700.0)
    assert s.due(3700.5) == [("k8s.io", "a.tar")]


def test_a_removed_file_is_forgotten_and_a_touch_restarts_the_quiet_period() -> None:
    s = Settler(quiet=0.5)
    s.completed(("k8s.io", "a.tar"), 0.0)
    s.completed(("k8s.io", "b.tar"), 0.0)
    s.removed(("k8s.io", "a.tar"))
    s.touched(("k8s.io", "b.tar"), 0.4)
    assert s.due(0.6) == []
    assert s.due(0.9) == [("k8s.io", "b.tar")]


def test_the_queue_starts_the_sandbox_tarball_first_then_by_name_at_most_parallel_at_once() -> None:
    key = import_order("registry.k8s.io/pause:3.9", lambda f, image: False)
    q = ImportQueue(key)
    for name in ("zeta.tar", "alpha.tar", "pause-3.9.tar", "beta.tar"):
        q.add(_f(name))
    q.add(_f("aaa.tar", "default"))

    assert q.take(2) == [_f("pause-3.9.tar"), _f("aaa.tar", "default")]
    assert q.take(2) == []
    q.finished(_f("pause-3.9.tar"))
    assert q.take(2) == [_f("alpha.tar")]


def test_a_file_ready_again_while_importing_is_imported_once_more_after() -> None:
    q = ImportQueue(import_order(None, lambda f, image: False))
    q.add(_f("a.tar"))
    assert q.take(4) == [_f("a.tar")]
    q.add(_f("a.tar"))
    q.add(_f("a.tar"))
    assert q.take(4) == []
    q.finished(_f("a.tar"))
    assert q.take(4) == [_f("a.tar")]
    q.finished(_f("a.tar"))
    assert q.idle


def test_the_record_decides_which_tarball_holds_the_sandbox_image() -> None:
    key = import_order("registry.k8s.io/pause:3.9", lambda f, image: f.name == "infra.tar")
    assert sorted([_f("a.tar"), _f("infra.tar")], key=key) == [_f("infra.tar"), _f("a.tar")]
