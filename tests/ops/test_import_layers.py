"""The layers of ARCHITECTURE.md, enforced: import-linter's contracts from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from learnflow import REPO_ROOT


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    # A subprocess with the repo first on sys.path, so the worktree's code is analysed.
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_contracts_hold():
    out = _lint(REPO_ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_a_forbidden_import_is_caught():
    """The contracts bite: a kernel module importing `sources` (inside a function) breaks them."""
    probe = REPO_ROOT / "learnflow" / "_layer_probe.py"
    probe.write_text("def f():\n    from sources import get_source\n\n    return get_source\n")
    try:
        out = _lint(REPO_ROOT / "pyproject.toml")
    finally:
        probe.unlink()
    assert out.returncode != 0
    assert "learnflow._layer_probe -> sources" in out.stdout


def test_workflow_type_names_are_class_names():
    """worker.registered_workflow_types names a workflow by its class (no private SDK API):
    that holds while no `@workflow.defn` passes `name=`."""
    import ast

    from worker import registered_workflow_types

    named = []
    for path in (REPO_ROOT / "workflows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for dec in node.decorator_list:
                    is_defn = isinstance(dec, ast.Call) and ast.unparse(dec.func) == "workflow.defn"
                    if is_defn and any(k.arg == "name" for k in dec.keywords):
                        named.append(node.name)
    assert named == []
    types = registered_workflow_types()
    assert "IngestSourceWorkflow" in types
    assert all(name == cls.__name__ for name, cls in types.items())
