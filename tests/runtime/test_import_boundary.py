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
