"""Layer application on crafted tarballs: whiteouts, hard links, metadata, and hostile entries.

Needs root (chown, mknod, trusted.* xattrs), like the layer store itself.
"""
import io
import os
import stat
import tarfile

import pytest

from pyctr.errors import LayerError
from pyctr.image.layer import apply_layer


def tar(*entries, compress=None):
    """entries: (name, kind, extra) with kind in file/dir/sym/link/chr/blk/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            data = b""
            if kind == "file":
                data = extra[0] if extra else b"data"
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra[0]
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, extra[0]
            elif kind in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = extra[0]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            if kind == "file" and len(extra) > 1:
                info.uid, info.gid, info.mode = extra[1]
            if kind == "file" and len(extra) > 2:
                info.pax_headers = extra[2]
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    if compress == "gzip":
        import gzip
        raw = gzip.compress(raw)
    elif compress == "zstd":
        import zstandard
        raw = zstandard.ZstdCompressor().compress(raw)
    return raw


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "layer" / "diff"
    d.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host")
    return d


def apply(raw, dest, **kw):
    return apply_layer(io.BytesIO(raw), str(dest), "test-layer", **kw)


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_plain_layer_and_diff_id(dest, compress):
    import hashlib
    raw_plain = tar(("etc", "dir"), ("etc/hostname", "file", b"box\n", (1000, 1001, 0o4755)),
                    ("bin", "dir"), ("bin/sh", "sym", "/bin/busybox"), ("etc/hn2", "link", "etc/hostname"),
                    ("run/fifo", "fifo"))
    raw = tar(("etc", "dir"), ("etc/hostname", "file", b"box\n", (1000, 1001, 0o4755)),
              ("bin", "dir"), ("bin/sh", "sym", "/bin/busybox"), ("etc/hn2", "link", "etc/hostname"),
              ("run/fifo", "fifo"), compress=compress)
    diff_id, size = apply(raw, dest)
    assert diff_id == "sha256:" + hashlib.sha256(raw_plain).hexdigest()
    assert size == len(raw_plain)
    st = os.lstat(dest / "etc/hostname")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o4755)
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.lstat(dest / "etc/hn2").st_ino == st.st_ino
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)
    assert os.path.isdir(dest / "run")  # implied parent created


def test_whiteouts(dest):
    apply(tar(("a", "dir"), ("a/.wh.gone", "file", b""), ("a/.wh..wh..opq", "file", b""),
              ("b", "dir"), ("b/kept", "file"), ("b/.wh.kept", "file", b"")), dest)
    st = os.lstat(dest / "a/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "a", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(dest / "a/.wh.gone") and not os.path.lexists(dest / "a/.wh..wh..opq")
    # same-layer rule: an entry of this layer stays visible despite its whiteout
    assert stat.S_ISREG(os.lstat(dest / "b/kept").st_mode)


def test_overlay_xattrs_from_tar_dropped(dest):
    apply(tar(("f", "file", b"x", (0, 0, 0o644), {"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                                  "SCHILY.xattr.user.keep": "1"})), dest)
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "f")
    assert os.getxattr(dest / "f", "user.keep") == b"1"


def test_later_entry_replaces(dest):
    apply(tar(("x", "dir"), ("x/y", "file"), ("x", "file", b"now a file")), dest)
    assert (dest / "x").read_bytes() == b"now a file"


@pytest.mark.parametrize("entries,why", [
    ([("../escape", "file")], "'..'"),
    ([("a/../../escape", "file")], "'..'"),
    ([("/etc/escape", "file")], "absolute path"),
    ([("link", "sym", "../outside"), ("link/secret", "file", b"pwned")], "symbolic link"),
    ([("link", "sym", "/"), ("link/tmp/x", "file", b"pwned")], "symbolic link"),
    ([("d", "dir"), ("d/l", "sym", "../../outside"), ("d/l/new", "file")], "symbolic link"),
    ([("hl", "link", "../outside/secret")], "'..'"),
    ([("hl", "link", "/etc/passwd")], "absolute path"),
    ([("l", "sym", "../outside"), ("hl", "link", "l/secret")], "symbolic link"),
    ([("dev/sda", "blk", (8, 0))], "device node"),
    ([("dev/mem", "chr", (1, 1))], "device node"),
    ([("a/.wh..", "file", b"")], "invalid whiteout"),
])
def test_hostile_refused_and_nothing_outside(dest, entries, why):
    outside = dest.parent.parent / "outside"
    before = sorted(os.listdir(outside))
    with pytest.raises(LayerError, match=why) as info:
        apply(tar(*entries), dest)
    assert "test-layer" in str(info.value)
    assert sorted(os.listdir(outside)) == before
    assert (outside / "secret").read_text() == "host"
    assert not os.path.exists("/etc/escape")


def test_devices_allowed_on_request(dest):
    apply(tar(("dev/null2", "chr", (1, 3))), dest, allow_devices=True)
    assert os.lstat(dest / "dev/null2").st_rdev == os.makedev(1, 3)


def test_truncated_tar_is_an_error(dest):
    raw = tar(("big", "file", b"x" * 100000))
    with pytest.raises(LayerError):
        apply(raw[:20000], dest)


def test_truncated_and_corrupt_gzip_are_errors(dest):
    import gzip
    raw = gzip.compress(tar(("big", "file", os.urandom(300_000))))
    with pytest.raises(LayerError, match="ended before the end of the gzip stream"):
        apply(raw[:-3], dest)
    bad = bytearray(raw)
    bad[-6] ^= 1  # the trailer's CRC
    with pytest.raises(LayerError):
        apply(bytes(bad), dest)


def test_gunzip_reads_members_in_a_row_in_bounded_pieces():
    import gzip
    import threading
    from pyctr.image.layer import Gunzip, HashReader
    a = os.urandom(200_000) + b"x" * 3_000_000
    raw = gzip.compress(a) + gzip.compress(b"second") + b"\0" * 10
    g = Gunzip(io.BytesIO(raw))
    parts = []
    while True:
        b = g.read(5000)
        if not b:
            break
        assert len(b) <= 5000
        parts.append(b)
    assert b"".join(parts) == a + b"second"
    # the read-ahead thread hashes everything and stops when asked, even with a full queue
    import hashlib
    r = HashReader(Gunzip(io.BytesIO(raw)))
    assert r.read(10) == a[:10]
    assert r.drain() == "sha256:" + hashlib.sha256(a + b"second").hexdigest() and r.size == len(a) + 6
    r = HashReader(io.BytesIO(os.urandom(20 << 20)))
    r.read(1)
    r.close()
    assert not r.thread.is_alive() and threading.active_count() >= 1
