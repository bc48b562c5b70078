"""The runsc FIFO: mode rules (pure), creation, refusals, open modes, pipe size."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.core.fifo_rules import FifoError, clamp_pipe_size, validate_fifo_mode
from actors.containerd.fifo import FifoSetup, ensure_fifo, open_fifo, pipe_max_size, set_pipe_size


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# ---------------------------------------------------------------- pure rules


@pytest.mark.parametrize("mode", [0o600, 0o620, 0o640, 0o660, 0o700, 0o770])
def test_modes_that_keep_the_world_out_are_accepted(mode: int) -> None:
    assert validate_fifo_mode(mode) == mode


def test_a_world_writable_mode_is_refused() -> None:
    with pytest.raises(FifoError) as e:
        validate_fifo_mode(0o622)
    assert str(e.value) == "fifo mode 0o622 is invalid: it is world-writable"


def test_a_mode_with_bits_beyond_permissions_is_refused() -> None:
    with pytest.raises(FifoError) as e:
        validate_fifo_mode(0o4600)
    assert str(e.value) == "fifo mode 0o4600 is invalid: only permission bits 0o777 allowed"


def test_a_mode_the_owner_cannot_write_is_refused() -> None:
    with pytest.raises(FifoError) as e:
        validate_fifo_mode(0o400)
    assert str(e.value) == "fifo mode 0o400 is invalid: the owner must read and write"


def test_a_mode_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(FifoError) as e:
        validate_fifo_mode("0600")  # type: ignore[arg-type]
    assert str(e.value) == "fifo mode '0600' is invalid: only permission bits 0o777 allowed"


def test_pipe_size_is_capped_at_the_kernel_maximum() -> None:
    assert clamp_pipe_size(4 << 20, 1 << 20) == 1 << 20
    assert clamp_pipe_size(65536, 1 << 20) == 65536


def test_a_pipe_size_that_is_not_positive_is_refused() -> None:
    with pytest.raises(FifoError) as e:
        clamp_pipe_size(0, 1 << 20)
    assert str(e.value) == "pipe size 0 is invalid: expected a positive byte count"


# ---------------------------------------------------------------- creation and refusals


def test_a_new_fifo_gets_the_configured_mode_whatever_the_umask(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "runsc.fifo"
    assert ensure_fifo(str(path), 0o660) is FifoSetup.CREATED
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert mode_of(path) == 0o660  # the umask 022 would have made it 0o640


def test_the_default_mode_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    assert mode_of(path) == 0o600


def test_an_existing_fifo_with_a_wrong_mode_has_its_mode_fixed(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    os.mkfifo(path)
    os.chmod(path, 0o666)
    assert ensure_fifo(str(path), 0o600) is FifoSetup.MODE_FIXED
    assert mode_of(path) == 0o600


def test_an_existing_fifo_with_the_right_mode_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    inode = os.lstat(path).st_ino
    assert ensure_fifo(str(path), 0o600) is FifoSetup.UNCHANGED
    assert os.lstat(path).st_ino == inode


def test_a_regular_file_in_the_way_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    path.write_bytes(b"someone's data")
    with pytest.raises(FifoError) as e:
        ensure_fifo(str(path), 0o600)
    assert str(e.value) == f"{str(path)!r} exists and is not a fifo (a regular file)"
    assert path.read_bytes() == b"someone's data"


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    path.mkdir()
    with pytest.raises(FifoError) as e:
        ensure_fifo(str(path), 0o600)
    assert str(e.value) == f"{str(path)!r} exists and is not a fifo (a directory)"


def test_a_symlink_even_to_a_fifo_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.fifo"
    os.mkfifo(target, 0o600)
    path = tmp_path / "runsc.fifo"
    path.symlink_to(target)
    with pytest.raises(FifoError) as e:
        ensure_fifo(str(path), 0o600)
    assert str(e.value) == f"{str(path)!r} exists and is not a fifo (a symlink)"


def test_a_world_writable_mode_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    with pytest.raises(FifoError):
        ensure_fifo(str(path), 0o666)
    assert not path.exists()


def test_a_fifo_in_a_missing_directory_cannot_be_created(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "runsc.fifo"
    with pytest.raises(FifoError) as e:
        ensure_fifo(str(path), 0o600)
    assert str(e.value) == f"cannot create fifo {str(path)!r}: no such file or directory"


def test_opening_a_missing_fifo_names_it(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    with pytest.raises(FifoError) as e:
        open_fifo(str(path))
    assert str(e.value) == f"fifo {str(path)!r} does not exist"


# ---------------------------------------------------------------- open modes


def test_a_read_write_descriptor_never_sees_eof_when_writers_leave(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    fd = open_fifo(str(path), nonblocking=True)
    try:
        writer = os.open(path, os.O_WRONLY)
        os.write(writer, b"one line\n")
        os.close(writer)  # the last real writer is gone
        assert os.read(fd, 100) == b"one line\n"
        with pytest.raises(BlockingIOError):  # "nothing yet", not b"" (EOF)
            os.read(fd, 100)
    finally:
        os.close(fd)


def test_open_fifo_is_blocking_unless_asked_and_close_on_exec(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    blocking = open_fifo(str(path))
    polling = open_fifo(str(path), nonblocking=True)
    try:
        assert os.get_blocking(blocking) and not os.get_blocking(polling)
        assert not os.get_inheritable(blocking) and not os.get_inheritable(polling)
        assert fcntl.fcntl(blocking, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    finally:
        os.close(blocking)
        os.close(polling)


# ---------------------------------------------------------------- F_SETPIPE_SZ


def test_the_pipe_buffer_is_raised_and_shared_by_every_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    holder = open_fifo(str(path))
    try:
        assert set_pipe_size(holder, 1 << 20) == 1 << 20
        other = open_fifo(str(path))
        try:
            assert fcntl.fcntl(other, fcntl.F_GETPIPE_SZ) == 1 << 20
        finally:
            os.close(other)
    finally:
        os.close(holder)


def test_a_pipe_size_above_the_kernel_maximum_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    fd = open_fifo(str(path))
    try:
        assert set_pipe_size(fd, 64 * pipe_max_size()) == pipe_max_size()
    finally:
        os.close(fd)


def test_a_smaller_pipe_size_never_shrinks_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    ensure_fifo(str(path), 0o600)
    fd = open_fifo(str(path))
    try:
        set_pipe_size(fd, 1 << 20)
        os.write(fd, b"x" * 200_000)  # more than a 64 KiB buffer could hold
        assert set_pipe_size(fd, 65536) == 1 << 20
        assert len(os.read(fd, 300_000)) == 200_000
    finally:
        os.close(fd)
