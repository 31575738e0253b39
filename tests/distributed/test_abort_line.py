"""``abort`` lets the launcher read its one error line before ``MPI_Abort`` (hydra may kill first)."""

from __future__ import annotations

import os
import threading
import time

from gpunet.distributed import comm


def test_unread_bytes_counts_what_the_pipes_reader_has_not_taken():
    read_end, write_end = os.pipe()
    try:
        assert comm._unread_bytes(write_end) == 0
        os.write(write_end, b"gpunet: error: x\n")
        assert comm._unread_bytes(write_end) == 17
        os.read(read_end, 100)
        assert comm._unread_bytes(write_end) == 0
    finally:
        os.close(read_end)
        os.close(write_end)


def test_abort_waits_until_the_line_is_read_and_no_longer():
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    try:
        stream.write("gpunet: error: rank 1/2: boom\n")
        stream.flush()
        threading.Timer(0.3, lambda: os.read(read_end, 100)).start()  # the launcher reads late
        start = time.monotonic()
        comm._let_the_launcher_read(stream)
        waited = time.monotonic() - start
        assert 0.3 <= waited < comm.FORWARD_WAIT + 0.5
        assert comm._unread_bytes(write_end) == 0
    finally:
        stream.close()
        os.close(read_end)


def test_abort_gives_up_after_its_limit_when_nobody_reads(monkeypatch):
    monkeypatch.setattr(comm, "FORWARD_WAIT", 0.2)
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    try:
        stream.write("unread\n")
        stream.flush()
        start = time.monotonic()
        comm._let_the_launcher_read(stream)
        assert time.monotonic() - start < 1.0
    finally:
        stream.close()
        os.close(read_end)


def test_a_stream_without_a_descriptor_is_not_waited_for():
    import io

    start = time.monotonic()
    comm._let_the_launcher_read(io.StringIO())
    assert time.monotonic() - start < 0.5
