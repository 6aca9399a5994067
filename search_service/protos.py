"""Generate the gRPC Python code from `protos/` (never edited by hand).

`learn protos` runs it (so do `make install` and the image build); importing `search_service.pb`
refuses generated files that are missing or older than their .proto. Output goes to
`search_service/_gen/` (git-ignored) with imports rewritten to be package-relative, so the
generated modules need no sys.path changes.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from learnflow import REPO_ROOT

PROTO_ROOT = REPO_ROOT / "protos"
GEN_ROOT = Path(__file__).resolve().parent / "_gen"
GEN_PACKAGE = "search_service._gen"


def _protos() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _outputs(proto: Path) -> list[Path]:
    rel = proto.relative_to(PROTO_ROOT).with_suffix("")
    return [GEN_ROOT / f"{rel}_pb2.py", GEN_ROOT / f"{rel}_pb2_grpc.py"]


def is_stale() -> bool:
    for proto in _protos():
        for out in _outputs(proto):
            if not out.exists() or out.stat().st_mtime < proto.stat().st_mtime:
                return True
    return False


def generate() -> list[Path]:
    from grpc_tools import protoc

    GEN_ROOT.mkdir(parents=True, exist_ok=True)
    include = str(resources.files("grpc_tools") / "_proto")
    protos = [str(p.relative_to(PROTO_ROOT)) for p in _protos()]
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={GEN_ROOT}",
            f"--grpc_python_out={GEN_ROOT}",
            f"--pyi_out={GEN_ROOT}",
            *protos,
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    written = []
    for path in GEN_ROOT.rglob("*.py*"):
        if path.suffix not in (".py", ".pyi"):
            continue
        text = path.read_text()
        # `from learn.search.v1 import x` -> `from search_service._gen.learn.search.v1 import x`
        text = re.sub(
            r"^from (learn\.[\w.]+) import", rf"from {GEN_PACKAGE}.\1 import", text, flags=re.M
        )
        text = re.sub(r"^import (learn\.[\w.]+)", rf"import {GEN_PACKAGE}.\1", text, flags=re.M)
        path.write_text(text)
        written.append(path)
    for d in [GEN_ROOT, *(p for p in GEN_ROOT.rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    return written
