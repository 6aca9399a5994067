"""Archive change detection: tar-header checksum (OLX) and the Canvas zip rule."""

from __future__ import annotations

import copy
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from sources.archives.checksum import (
    archive_checksum,
    canvas_archive_checksum,
    legacy_tar_checksum,
    tar_header_checksum,
    tar_header_checksums,
)
from sources.archives.safe_extract import CorruptArchiveError, TooManyMembersError
from tests.helpers.fixtures import FIXTURES_ROOT, TEST_JSON

FIXTURES = TEST_JSON
OLX = FIXTURES / "course-v1:MITxT+8.01.3x+3T2022.tar.gz"
OLX_NO_CHANGE = FIXTURES / "course-v1:MITxT+8.01.3x+3T2022_no_change.tar.gz"
OLX_4X = FIXTURES / "course-v1:MITxT+8.01.4x+3T2022.tar.gz"
CANVAS_DIR = FIXTURES_ROOT / "canvas-export" / "du-spcs-302-earth-and-its-processes"


def read_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else None
            out.append((copy.copy(m), data))
    return out


def write_tar(path: Path, members, fmt=tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def test_no_change_twin_is_equal():
    assert OLX.read_bytes() != OLX_NO_CHANGE.read_bytes()  # different gzip wrapper bytes
    assert tar_header_checksum(OLX) == tar_header_checksum(OLX_NO_CHANGE)
    assert legacy_tar_checksum(OLX) == legacy_tar_checksum(OLX_NO_CHANGE)


def test_other_course_differs():
    assert tar_header_checksum(OLX) != tar_header_checksum(OLX_4X)


def test_digest_shape_and_determinism():
    digest = tar_header_checksum(OLX)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == tar_header_checksum(OLX)
    assert len(tar_header_checksums(OLX)) == 25  # every header, directories included
    assert archive_checksum(OLX) == digest


def test_rewrapped_identical_headers_are_equal(tmp_path):
    """The same members written twice (different gzip timestamps) keep the checksum."""
    import time

    first = write_tar(tmp_path / "first.tar.gz", read_members(OLX))
    time.sleep(1.1)  # the gzip header stores the write time
    second = write_tar(tmp_path / "second.tar.gz", read_members(OLX))
    assert first.read_bytes() != second.read_bytes()
    assert tar_header_checksum(first) == tar_header_checksum(second)


def test_edited_file_with_new_mtime_differs(tmp_path):
    members = read_members(OLX)
    edited = []
    for info, data in members:
        if info.name == "course/policies/3T2022/grading_policy.json":
            data = data.replace(b'"weight": 0.15', b'"weight": 0.25')
            info.mtime += 3600
        edited.append((info, data))
    baseline = write_tar(tmp_path / "base.tar.gz", read_members(OLX))
    variant = write_tar(tmp_path / "edited.tar.gz", edited)
    assert tar_header_checksum(variant) != tar_header_checksum(baseline)


def test_new_mtimes_differ(tmp_path):
    members = read_members(OLX)
    baseline = write_tar(tmp_path / "base.tar.gz", members)
    touched = [(copy.copy(i), d) for i, d in members]
    for info, _ in touched:
        info.mtime += 86400
    variant = write_tar(tmp_path / "touched.tar.gz", touched)
    assert tar_header_checksum(variant) != tar_header_checksum(baseline)


def test_extra_member_differs(tmp_path):
    members = read_members(OLX)
    baseline = write_tar(tmp_path / "base.tar.gz", members)
    extra = tarfile.TarInfo("course/.DS_Store")
    variant = write_tar(tmp_path / "extra.tar.gz", [*members, (extra, b"\0\0\0\1Bud1")])
    assert tar_header_checksum(variant) != tar_header_checksum(baseline)


def test_same_size_same_mtime_edit_is_invisible(tmp_path):
    """A documented limit of the rule: headers do not cover file bytes (per-file md5 does)."""
    members = read_members(OLX)
    baseline = write_tar(tmp_path / "base.tar.gz", members)
    edited = [
        (copy.copy(i), d.replace(b"0.15", b"0.16") if d and "grading" in i.name else d)
        for i, d in members
    ]
    variant = write_tar(tmp_path / "edited.tar.gz", edited)
    assert tar_header_checksum(variant) == tar_header_checksum(baseline)


def test_empty_archive_has_a_stable_checksum():
    assert tar_header_checksums(FIXTURES / "empty.tar.gz") == []
    assert tar_header_checksum(FIXTURES / "empty.tar.gz") == tar_header_checksum(
        FIXTURES / "empty.tar.gz"
    )


def test_member_cap_and_corrupt(tmp_path):
    from sources.archives.safe_extract import ExtractionLimits

    with pytest.raises(TooManyMembersError):
        tar_header_checksum(OLX, ExtractionLimits(max_members=3))
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(CorruptArchiveError):
        tar_header_checksum(junk)


# -- Canvas ---------------------------------------------------------------------------------


def zip_canvas(dest: Path, *, edits: dict[str, bytes] | None = None, reverse=False) -> Path:
    edits = edits or {}
    files = sorted(p for p in CANVAS_DIR.rglob("*") if p.is_file())
    if reverse:
        files.reverse()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            rel = path.relative_to(CANVAS_DIR).as_posix()
            zf.writestr(rel, edits.get(rel, path.read_bytes()))
        for rel, data in edits.items():
            if not (CANVAS_DIR / rel).exists():
                zf.writestr(rel, data)
    return dest


@pytest.fixture(scope="module")
def canvas_zip(tmp_path_factory):
    return zip_canvas(tmp_path_factory.mktemp("canvas") / "course.imscc")


def test_canvas_checksum_ignores_order_manifest_and_settings(canvas_zip, tmp_path):
    base = canvas_archive_checksum(canvas_zip)
    assert base == canvas_archive_checksum(zip_canvas(tmp_path / "rev.imscc", reverse=True))
    manifest = (CANVAS_DIR / "imsmanifest.xml").read_bytes() + b"<!-- re-exported -->"
    settings = b"<course><title>renamed</title></course>"
    changed_meta = zip_canvas(
        tmp_path / "meta.imscc",
        edits={"imsmanifest.xml": manifest, "course_settings/course_settings.xml": settings},
    )
    assert canvas_archive_checksum(changed_meta) == base
    assert archive_checksum(canvas_zip) == base


def test_canvas_checksum_sees_content_and_new_files(canvas_zip, tmp_path):
    base = canvas_archive_checksum(canvas_zip)
    page = "wiki_content/course-home.html"
    edited = zip_canvas(
        tmp_path / "edit.imscc",
        edits={page: (CANVAS_DIR / page).read_bytes().replace(b"Welcome", b"Hello!!")},
    )
    assert canvas_archive_checksum(edited) != base
    added = zip_canvas(tmp_path / "add.imscc", edits={"wiki_content/new.html": b"<p>new</p>"})
    assert canvas_archive_checksum(added) != base


def test_canvas_checksum_includes_published_set_and_url_config(canvas_zip):
    base = canvas_archive_checksum(canvas_zip)
    published = [("wiki_content/course-home.html", "Course Home")]
    with_pub = canvas_archive_checksum(canvas_zip, published)
    assert with_pub != base
    assert with_pub == canvas_archive_checksum(canvas_zip, list(reversed(published)))
    with_conf = canvas_archive_checksum(canvas_zip, published, {"Course Home": {"url": "u"}})
    assert with_conf != with_pub
    assert len(base) == 32


def test_archive_checksum_command(canvas_zip):
    import typer
    from typer.testing import CliRunner

    from learn_cli.commands.archives import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["archive-checksum", str(OLX)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == tar_header_checksum(OLX)
    twin = runner.invoke(app, ["archive-checksum", str(OLX_NO_CHANGE)])
    assert twin.stdout == result.stdout
    canvas = runner.invoke(app, ["archive-checksum", str(canvas_zip)])
    assert canvas.stdout.strip() == canvas_archive_checksum(canvas_zip)
