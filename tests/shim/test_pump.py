"""pump.Pump, the one copy loop of both shim modes, on real pipes: backpressure keeps one chunk
pending (and the order), a dead reader is dropped while the source is still drained, EOF closes."""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim.pump import CHUNK, READ, WRITE, Pump  # noqa: E402


def _pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _drain(fd):
    out = bytearray()
    while True:
        try:
            b = os.read(fd, 1 << 20)
        except BlockingIOError:
            return bytes(out)
        if not b:
            return bytes(out)
        out += b


def test_backpressure_keeps_one_chunk_pending_and_the_order():
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    data = bytes(range(256)) * 1024  # 256 KiB: more than the destination pipe holds
    sent = 0
    p = Pump(src_r, dst_w)
    got = bytearray()
    while sent < len(data) or p.pending or p.wants() == (src_r, READ):
        try:
            sent += os.write(src_w, data[sent:sent + 8192]) if sent < len(data) else 0
        except BlockingIOError:
            pass
        if sent == len(data) and src_w >= 0:
            os.close(src_w)
            src_w = -1
        alive = p.step()
        if p.pending:  # the destination is full: the pump waits on it, not on the source
            assert p.wants() == (dst_w, WRITE) and len(p.pending) <= CHUNK
            got += _drain(dst_r)
        if not alive:
            break
    got += _drain(dst_r)
    assert bytes(got) == data
    assert p.src == -1 and p.dst == -1 and p.wants() is None  # EOF closed the source and the owned sink
    os.close(dst_r)


def test_dead_reader_is_dropped_and_the_source_still_drained():
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    os.close(dst_r)
    p = Pump(src_r, dst_w)
    os.write(src_w, b"x" * 1000)
    assert p.step() and p.dst == -1 and p.pending == b""  # EPIPE: dropped (and closed: owned)
    os.write(src_w, b"y" * 1000)
    assert p.step() and p.wants() == (src_r, READ)        # still read, into nothing
    os.close(src_w)
    assert not p.step() and p.src == -1


def test_a_destination_it_does_not_own_stays_open():
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    p = Pump(src_r, dst_w, owns_dst=False)
    os.write(src_w, b"abc")
    os.close(src_w)
    assert p.step() and not p.step()
    assert os.read(dst_r, 10) == b"abc"
    os.write(dst_w, b"still open")
    assert os.read(dst_r, 20) == b"still open"
    os.close(dst_r)
    os.close(dst_w)


def test_export_and_restore_carry_the_pending_chunk():
    src_r, src_w = _pipe()
    dst_r, dst_w = _pipe()
    while True:  # fill the destination
        try:
            os.write(dst_w, b"f" * 4096)
        except BlockingIOError:
            break
    os.write(src_w, b"pending bytes")
    p = Pump(src_r, dst_w)
    assert p.step() and p.pending == b"pending bytes"
    q = Pump.restore(p.export())
    assert (q.src, q.dst, q.pending, q.owns_dst) == (src_r, dst_w, b"pending bytes", True)
    assert q.wants() == (dst_w, WRITE)
    assert set(_drain(dst_r)) == {ord("f")}
    assert q.step() and q.pending == b""
    assert _drain(dst_r) == b"pending bytes"
    for fd in (src_r, src_w, dst_r, dst_w):
        os.close(fd)
