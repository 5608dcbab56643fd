"""runtime/ must never load torch, transformers or peft (ARCHITECTURE.md, dependency rules)."""

import subprocess
import sys

FORBIDDEN = ("torch", "transformers", "peft")


def test_runtime_import_loads_no_training_stack():
    code = (
        "import pkgutil, importlib, sys, simulsa.runtime as r\n"
        "for m in pkgutil.walk_packages(r.__path__, 'simulsa.runtime.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"simulsa.runtime loaded: {result.stdout.strip()}"


def test_cli_help_loads_no_training_stack():
    code = f"import sys, simulsa.cli.app\nprint(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"importing the CLI loaded: {result.stdout.strip()}"


def test_no_runtime_source_imports_upwards_even_lazily():
    """Every import statement in runtime/, at any depth (a lazy import inside a function counts too)."""
    import ast
    from pathlib import Path

    runtime = Path(__file__).parents[2] / "runtime"
    upward = ("simulsa.train", "simulsa.export", "simulsa.cli", *FORBIDDEN)
    offenders = []
    for path in sorted(runtime.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []  # fmt: skip
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN or n.startswith(upward)]
    assert offenders == [], offenders
