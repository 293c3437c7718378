"""House rules a test can hold: the library has no UI, nothing reaches into Streamlit's
private parts, and modules stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "packviz"
DASHBOARD_FILES = [
    ROOT / "app.py",
    *(ROOT / "pages").glob("*.py"),
    *(ROOT / "dashboard").rglob("*.py"),
]


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_the_library_imports_no_ui():
    for path in LIBRARY.rglob("*.py"):
        ui = [n for n in _imports(path) if n.split(".")[0] in ("streamlit", "plotly")]
        assert not ui, (path, ui)


def test_no_private_streamlit_access():
    """No import from a private Streamlit path, and no ``_attribute`` of a Streamlit
    object (``st._x``, ``st.session_state._x``, …) in the dashboard."""
    public = ("streamlit", "streamlit.testing.v1")
    for path in DASHBOARD_FILES:
        for name in _imports(path):
            if name.split(".")[0] == "streamlit":
                assert name in public, (path, name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                assert not (isinstance(base, ast.Name) and base.id == "st"), (path, node.attr)


def test_importing_packviz_loads_neither_ui_nor_torch():
    code = (
        "import sys, packviz; print(*(m in sys.modules for m in ('streamlit', 'plotly', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_star_import_loads_no_torch():
    """`from packviz import *` imports every name of ``__all__``: none may pull torch in
    (`PackedIterableDataset`, a torch class, stays reachable as pv.PackedIterableDataset)."""
    code = (
        "import sys\nfrom packviz import *\nimport packviz\n"
        "print('torch' in sys.modules)\n"
        "print(packviz.PackedIterableDataset.__name__, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "PackedIterableDataset", "True"]


def test_modules_stay_readable():
    """No module over ~450 lines unless its docstring says why it is one piece."""
    for path in [*LIBRARY.glob("*.py"), *DASHBOARD_FILES]:
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert lines <= 460 or "one module because" in doc, (path, lines)
