"""Importing an integration without its framework names the extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
sys.modules[{package!r}] = None  # as if the framework were not installed
try:
    import {module}
except ImportError as error:
    print(error)
else:
    print("imported")
"""


@pytest.mark.parametrize(
    ("module", "package", "install"),
    [
        ("datalab_ocr.llama_index", "llama_index", "pip install 'datalab-ocr[llama-index]'"),
        ("datalab_ocr.langchain", "langchain_core", "pip install 'datalab-ocr[langchain]'"),
    ],
    ids=["llama-index", "langchain"],
)
def test_a_missing_framework_names_the_extra_to_install(
    module: str, package: str, install: str
) -> None:
    script = _SCRIPT.format(package=package, module=module)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert install in done.stdout
    assert module in done.stdout


def test_the_package_root_imports_without_either_framework() -> None:
    script = (
        "import sys\n"
        "sys.modules['llama_index'] = sys.modules['langchain_core'] = None\n"
        "import datalab_ocr\n"
        "print(datalab_ocr.DatalabClient.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "DatalabClient"
