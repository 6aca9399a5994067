"""Safe extraction: crafted malicious archives of every kind are refused and leave no trace."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from sources.archives.safe_extract import (
    CompressionRatioError,
    CorruptArchiveError,
    ExtractionLimits,
    LinkEscapeError,
    MemberTooLargeError,
    NestingTooDeepError,
    PathTraversalError,
    SpecialFileError,
    TooManyMembersError,
    TotalSizeExceededError,
    UnsafeArchiveError,
    safe_extract,
)
from tests.helpers.fixtures import TEST_JSON

FIXTURES = TEST_JSON
OLX = FIXTURES / "course-v1:MITxT+8.01.3x+3T2022.tar.gz"


def _info(name: str, type_: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = ""):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = size
    info.linkname = linkname
    info.mode = 0o644
    return info


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode="w:gz"):
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def reg(name: str, data: bytes = b"hello"):
    return (_info(name), data)


@pytest.fixture
def sandbox(tmp_path: Path):
    """A parent for the extraction temp dirs, and the set of paths that existed before."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def assert_refused(archive: Path, sandbox: Path, error: type[UnsafeArchiveError], **limits):
    """Extraction raises `error`; nothing new exists beside the archive; temp dir is gone."""
    outside = archive.parent
    before = snapshot(outside)
    seen: dict[str, Path] = {}
    with (
        pytest.raises(error) as excinfo,
        safe_extract(archive, ExtractionLimits(**limits), parent_dir=sandbox) as ex,
    ):
        seen["root"] = ex.root
    assert excinfo.value.reason
    assert snapshot(outside) == before, "something was written outside the temp dir"
    assert list(sandbox.iterdir()) == [], "temp dir not removed"
    assert "root" not in seen
    return excinfo.value


# -- path traversal -------------------------------------------------------------------------


def test_absolute_path_refused(tmp_path, sandbox):
    evil = f"/tmp/learnflow-evil-{uuid.uuid4().hex}.txt"
    archive = make_tar(tmp_path / "abs.tar.gz", [reg("ok.txt"), reg(evil)])
    err = assert_refused(archive, sandbox, PathTraversalError)
    assert err.member == evil
    assert not Path(evil).exists()


def test_dotdot_path_refused(tmp_path, sandbox):
    archive = make_tar(tmp_path / "dots.tar.gz", [reg("course/../../evil.txt")])
    assert_refused(archive, sandbox, PathTraversalError)
    assert not (tmp_path / "evil.txt").exists()


def test_windows_style_paths_refused(tmp_path, sandbox):
    archive = make_tar(tmp_path / "win.tar", [reg("..\\..\\evil.txt")], mode="w")
    assert_refused(archive, sandbox, PathTraversalError)
    archive = make_tar(tmp_path / "drive.tar", [reg("C:/evil.txt")], mode="w")
    assert_refused(archive, sandbox, PathTraversalError)


@pytest.mark.parametrize("name", ["../evil.txt", "/abs-evil.txt", "a/../../evil.txt"])
def test_zip_traversal_refused(tmp_path, sandbox, name):
    archive = tmp_path / "evil.imscc"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("imsmanifest.xml", "<manifest/>")
        zf.writestr(name, "pwned")
    assert_refused(archive, sandbox, PathTraversalError)
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/abs-evil.txt").exists()


# -- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["../../outside", "/etc", "a/../../.."])
def test_symlink_out_refused(tmp_path, sandbox, target):
    archive = make_tar(
        tmp_path / "sym.tar.gz",
        [(_info("course/link", tarfile.SYMTYPE, linkname=target), None), reg("course/link/x")],
    )
    assert_refused(archive, sandbox, LinkEscapeError)


def test_symlink_inside_is_skipped_not_created(tmp_path, sandbox):
    archive = make_tar(
        tmp_path / "sym-in.tar.gz",
        [
            reg("course/a.txt", b"A"),
            (_info("course/alias.txt", tarfile.SYMTYPE, linkname="a.txt"), None),
            (_info("course/dir", tarfile.SYMTYPE, linkname="."), None),
            reg("course/dir/b.txt", b"B"),  # lands in a real directory, not through the link
        ],
    )
    with safe_extract(archive, parent_dir=sandbox) as ex:
        assert ex.skipped_links == ["course/alias.txt", "course/dir"]
        assert ex.files == ["course/a.txt", "course/dir/b.txt"]
        assert not (ex.root / "course/alias.txt").exists()
        assert (ex.root / "course/dir").is_dir() and not (ex.root / "course/dir").is_symlink()
    assert list(sandbox.iterdir()) == []


def test_hardlink_out_refused(tmp_path, sandbox):
    archive = make_tar(
        tmp_path / "hard.tar.gz",
        [(_info("course/passwd", tarfile.LNKTYPE, linkname="../../../etc/passwd"), None)],
    )
    assert_refused(archive, sandbox, LinkEscapeError)
    archive = make_tar(
        tmp_path / "hard-abs.tar.gz",
        [(_info("course/passwd", tarfile.LNKTYPE, linkname="/etc/passwd"), None)],
    )
    assert_refused(archive, sandbox, LinkEscapeError)


def test_hardlink_inside_is_copied(tmp_path, sandbox):
    archive = make_tar(
        tmp_path / "hard-in.tar.gz",
        [
            reg("course/a.txt", b"same bytes"),
            (_info("course/b.txt", tarfile.LNKTYPE, linkname="course/a.txt"), None),
        ],
    )
    with safe_extract(archive, parent_dir=sandbox) as ex:
        b = ex.root / "course/b.txt"
        assert b.read_bytes() == b"same bytes"
        assert os.stat(b).st_nlink == 1  # a copy, never a link


def test_zip_symlink_out_refused(tmp_path, sandbox):
    archive = tmp_path / "zsym.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../etc/passwd")
    assert_refused(archive, sandbox, LinkEscapeError)


# -- special files --------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_refused(tmp_path, sandbox, type_):
    info = _info("course/dev", type_)
    info.devmajor, info.devminor = 1, 3
    archive = make_tar(tmp_path / "dev.tar.gz", [reg("course/ok.txt"), (info, None)])
    assert_refused(archive, sandbox, SpecialFileError)


def test_zip_device_refused(tmp_path, sandbox):
    archive = tmp_path / "zdev.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("fifo")
        info.external_attr = 0o010644 << 16
        zf.writestr(info, "")
    assert_refused(archive, sandbox, SpecialFileError)


# -- budgets --------------------------------------------------------------------------------


def test_too_many_members(tmp_path, sandbox):
    archive = make_tar(tmp_path / "many.tar.gz", [reg(f"f{i}.txt") for i in range(10)])
    assert_refused(archive, sandbox, TooManyMembersError, max_members=5)
    zarchive = tmp_path / "many.zip"
    with zipfile.ZipFile(zarchive, "w") as zf:
        for i in range(10):
            zf.writestr(f"f{i}.txt", "x")
    assert_refused(zarchive, sandbox, TooManyMembersError, max_members=5)


def test_huge_member(tmp_path, sandbox):
    archive = make_tar(tmp_path / "big.tar.gz", [reg("big.bin", os.urandom(4096))])
    assert_refused(archive, sandbox, MemberTooLargeError, max_member_bytes=1000)


def test_total_size(tmp_path, sandbox):
    members = [reg(f"f{i}.bin", os.urandom(800)) for i in range(5)]
    archive = make_tar(tmp_path / "total.tar.gz", members)
    assert_refused(archive, sandbox, TotalSizeExceededError, max_total_bytes=3000)


def test_gzip_bomb_ratio(tmp_path, sandbox):
    archive = make_tar(tmp_path / "bomb.tar.gz", [reg("zeros.bin", bytes(20 * 1024 * 1024))])
    assert archive.stat().st_size < 100_000
    assert_refused(archive, sandbox, CompressionRatioError)


def test_zip_bomb_ratio(tmp_path, sandbox):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(20 * 1024 * 1024))
    assert_refused(archive, sandbox, CompressionRatioError)


def test_ratio_floor_lets_small_archives_pass(tmp_path, sandbox):
    archive = make_tar(tmp_path / "smallzeros.tar.gz", [reg("zeros.bin", bytes(64 * 1024))])
    with safe_extract(archive, parent_dir=sandbox) as ex:
        assert ex.total_bytes == 64 * 1024


# -- nested archives ------------------------------------------------------------------------


def _inner_tar(*members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_nested_tar_is_expanded(tmp_path, sandbox):
    inner = _inner_tar(reg("course/course.xml", b"<course/>"), reg("course/a/b.html", b"<p/>"))
    archive = make_tar(tmp_path / "outer.tar.gz", [reg("exported_courses_1.tar.gz", inner)])
    with safe_extract(archive, parent_dir=sandbox) as ex:
        assert ex.nested == ["exported_courses_1.tar.gz"]
        assert ex.files == [
            "exported_courses_1/course/a/b.html",
            "exported_courses_1/course/course.xml",
        ]
        assert not (ex.root / "exported_courses_1.tar.gz").exists()
    assert list(sandbox.iterdir()) == []


def test_archives_inside_the_course_stay_files(tmp_path, sandbox):
    inner = _inner_tar(reg("lab/main.py", b"print(1)"))
    archive = make_tar(
        tmp_path / "course.tar.gz",
        [reg("course/course.xml", b"<course/>"), reg("course/static/lab1.tar.gz", inner)],
    )
    with safe_extract(archive, parent_dir=sandbox) as ex:
        assert ex.nested == []
        assert ex.files == ["course/course.xml", "course/static/lab1.tar.gz"]


def test_nested_tar_is_validated_too(tmp_path, sandbox):
    inner = _inner_tar(reg("../../evil.txt", b"pwned"))
    archive = make_tar(tmp_path / "outer.tar.gz", [reg("inner.tar.gz", inner)])
    assert_refused(archive, sandbox, PathTraversalError)


def test_nesting_too_deep(tmp_path, sandbox):
    level2 = _inner_tar(reg("x.txt", b"x"))
    level1 = _inner_tar(reg("l2.tar.gz", level2))
    archive = make_tar(tmp_path / "outer.tar.gz", [reg("l1.tar.gz", level1)])
    assert_refused(archive, sandbox, NestingTooDeepError, max_nesting=1)
    with safe_extract(archive, ExtractionLimits(max_nesting=2), parent_dir=sandbox) as ex:
        assert ex.files == ["l1/l2/x.txt"]


def test_nested_bomb_counts_against_outer_budget(tmp_path, sandbox):
    inner = _inner_tar(reg("zeros.bin", bytes(20 * 1024 * 1024)))
    archive = make_tar(tmp_path / "outer.tar.gz", [reg("inner.tar.gz", inner)])
    assert_refused(archive, sandbox, CompressionRatioError)


# -- ordinary archives ----------------------------------------------------------------------


def test_not_an_archive(tmp_path, sandbox):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8bnot really gzip")
    assert_refused(junk, sandbox, CorruptArchiveError)
    text = tmp_path / "plain.txt"
    text.write_text("hello")
    assert_refused(text, sandbox, CorruptArchiveError)


def test_real_olx_archive(sandbox):
    with safe_extract(OLX, parent_dir=sandbox) as ex:
        root = ex.root
        assert len(ex.files) == 18
        assert "course/course.xml" in ex.files
        assert (root / "course/about/overview.html").read_bytes().startswith(b"<section")
    assert not root.exists()


def test_empty_archive(sandbox):
    with safe_extract(FIXTURES / "empty.tar.gz", parent_dir=sandbox) as ex:
        assert ex.files == []


def test_temp_dir_removed_when_the_body_raises(sandbox):
    with pytest.raises(RuntimeError), safe_extract(OLX, parent_dir=sandbox) as ex:
        root = ex.root
        raise RuntimeError("boom")
    assert not root.exists()
    assert list(sandbox.iterdir()) == []
