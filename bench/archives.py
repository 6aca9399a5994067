"""Benchmark the archive core: `python -m bench.archives --json`.

Builds an OLX course of ~100 text files shaped like the real 8.01.3x export (its members plus
html/problem/video blocks, static PDFs and transcripts), then times: safe extraction, the
tar-header checksum, a first run through embedded Tika (files/s), and the unchanged re-run that
reuses stored text (extractor calls must be 0). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from learnflow.settings import get_settings
from learnflow.textextract import EmbeddedTikaExtractor, ExtractedText, TextExtractor
from sources.archives.checksum import tar_header_checksum
from sources.archives.olx import extract_olx_archive
from sources.archives.safe_extract import safe_extract

# the recorded OLX course (REFERENCE_DATA_DIR: ../shared/fixtures/mitlearn by default)
FIXTURE = get_settings().reference_data_dir / "test_json" / "course-v1:MITxT+8.01.3x+3T2022.tar.gz"
RUN = "course-v1:MITxT+8.01.3x+3T2022"
WORDS = [
    "torque", "angular", "momentum", "inertia", "rotation", "axis", "wheel", "energy",
    "conservation", "rigid", "body", "precession", "gyroscope", "friction", "rolling",
    "slipping", "lever", "arm", "couple", "equilibrium",
]  # fmt: skip


def _text(n: int, seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(n))


def _pdf(lines: list[str], title: str) -> bytes:
    stream = "BT /F1 11 Tf 72 720 Td " + " ".join(f"({t}) Tj 0 -14 Td" for t in lines) + " ET"
    body = stream.encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream",
        f"<< /Title ({title}) >>".encode(),
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    out.seek(0, 2)
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref)
    )
    return out.getvalue()


def build_course(dest: Path, blocks: int = 20) -> Path:
    """The real export's members + `blocks` x (html pair, problem, video+srt, pdf)."""
    extra: dict[str, bytes] = {}
    for i in range(blocks):
        hid, pid = uuid.UUID(int=i * 2 + 1), uuid.UUID(int=i * 2 + 2)
        pointer = f'<html filename="{hid}" display_name="Unit {i}"/>'
        extra[f"course/html/{hid}.xml"] = pointer.encode()
        extra[f"course/html/{hid}.html"] = f"<h2>Unit {i}</h2><p>{_text(300, i)}</p>".encode()
        extra[f"course/problem/{pid}.xml"] = (
            f'<problem display_name="Problem {i}"><p>{_text(80, i + 1)}</p></problem>'
        ).encode()
        extra[f"course/video/video{i}.xml"] = (
            f'<video url_name="video{i}"><transcript language="en" src="video{i}-en.srt"/></video>'
        ).encode()
        cues = "".join(
            f"{n + 1}\n00:00:{n:02d},000 --> 00:00:{n + 1:02d},000\n{_text(12, i + n)}\n\n"
            for n in range(40)
        )
        extra[f"course/static/video{i}-en.srt"] = cues.encode()
        extra[f"course/static/handout{i}.pdf"] = _pdf(
            [_text(10, i + k) for k in range(30)], f"Handout {i}"
        )
    with tarfile.open(FIXTURE) as src, tarfile.open(dest, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            dst.addfile(info, io.BytesIO(data))
    return dest


class _Counting(TextExtractor):
    def __init__(self, inner: TextExtractor) -> None:
        self.inner, self.calls = inner, 0

    def extract(self, data: bytes, filename: str, content_type: str | None = None) -> ExtractedText:
        self.calls += 1
        return self.inner.extract(data, filename, content_type)


def run(blocks: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="learnflow-bench-") as tmp:
        archive = build_course(Path(tmp) / f"{RUN}.tar.gz", blocks)
        archive_bytes = archive.stat().st_size
        t0 = time.perf_counter()
        with safe_extract(archive) as extracted:
            n_members = len(extracted.files)
        t_extract = time.perf_counter() - t0

        t0 = time.perf_counter()
        tar_header_checksum(archive)
        t_checksum = time.perf_counter() - t0

        tika = EmbeddedTikaExtractor(ocr=False, max_workers=max(workers, 1))
        tika.extract(b"warm up", "warm.txt")  # engine start is not per-file cost
        counting = _Counting(tika)
        t0 = time.perf_counter()
        first = extract_olx_archive(
            archive, RUN, extractor=counting, base_url="https://x", max_workers=workers
        )
        t_first = time.perf_counter() - t0
        calls_first = counting.calls

        counting = _Counting(tika)
        t0 = time.perf_counter()
        again = extract_olx_archive(
            archive, RUN, extractor=counting, previous=first.previous(), max_workers=workers
        )
        t_again = time.perf_counter() - t0
        tika.close()

    texted = calls_first  # files sent to Tika (sjson excluded)
    return {
        "bench": "archives",
        "archive_bytes": archive_bytes,
        "members_extracted": n_members,
        "files_walked": len(first.files) + first.skipped_empty + len(first.failures),
        "content_files_kept": len(first.files),
        "failures": len(first.failures),
        "workers": workers,
        "safe_extract_s": round(t_extract, 4),
        "tar_checksum_s": round(t_checksum, 4),
        "first_run_s": round(t_first, 3),
        "first_run_files_per_s": round(texted / t_first, 1) if t_first else None,
        "extractor_calls_first": calls_first,
        "unchanged_rerun_s": round(t_again, 4),
        "unchanged_rerun_extractor_calls": counting.calls,
        "unchanged_rerun_files": len(again.files),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object (default)")
    parser.add_argument("--blocks", type=int, default=20, help="5 text files per block")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(args.blocks, args.workers)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
