"""Opening a local index does not import LanceDB's namespace REST client (a third of `import lancedb`), pandas,
or build the validators of pydantic models nobody uses, and anything that does use them still gets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _py(code: str, tmp_path: Path) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DESKTOP_SEARCH_DATA_DIR": str(tmp_path / "data"),
           "DESKTOP_SEARCH_CONFIG_DIR": str(tmp_path / "cfg"), "DESKTOP_SEARCH_MODEL_DIR": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_keyword_search_end_to_end_never_imports_the_rest_client(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The telescope pointed at the observatory dome.", "utf-8")
    code = (
        "import sys\n"
        "from desktop_search import cli\n"
        f"assert cli.main(['index', {str(docs)!r}, '--keyword-only']) == 0\n"
        "assert cli.main(['search', 'telescope', '--mode', 'keyword']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('lance_namespace_urllib3_client.api')))\n"
        "print(sorted(m for m in ('pandas', 'torch', 'transformers', 'onnxruntime') if m in sys.modules))\n"
    )
    out = _py(code, tmp_path)
    assert "a.txt" in out and "**telescope**" in out
    assert out.strip().splitlines()[-2:] == ["[]", "[]"]


def test_the_deferred_client_loads_in_full_when_used(tmp_path):
    code = (
        "from desktop_search.core.lancedb_import import import_lancedb\n"
        "lancedb = import_lancedb()\n"
        "import lance_namespace_urllib3_client as client\n"
        "print(client.ApiClient.__name__, client.__version__ == client.__dict__['__version__'])\n"
        "from lance_namespace_urllib3_client.api.table_api import TableApi\n"
        "print(TableApi.__name__, callable(lancedb.connect))\n"
    )
    assert _py(code, tmp_path).split() == ["ApiClient", "True", "TableApi", "True"]


def test_import_lancedb_leaves_overrides_as_it_was(tmp_path):
    code = (
        "import overrides; before = overrides.override\n"
        "from desktop_search.core.lancedb_import import import_lancedb\n"
        "import_lancedb()\n"
        "print(overrides.override is before)\n"
        "class A:\n    def f(self): pass\n"
        "try:\n    class B(A):\n        @overrides.override\n        def g(self): pass\n"
        "except TypeError:\n    print('still checked')\n"
    )
    assert _py(code, tmp_path).split("\n")[:2] == ["True", "still checked"]


def test_pyarrow_works_with_pandas_as_usual_once_pandas_is_imported(tmp_path):
    code = (
        "import sys\n"
        "from desktop_search.core.lancedb_import import import_lancedb\n"
        "import_lancedb()\n"
        "print('pandas' in sys.modules)\n"
        "import pandas as pd, pyarrow as pa\n"
        "arr = pa.array(pd.Series([1.0, float('nan')]))\n"  # pandas semantics: NaN is a missing value
        "print(arr.null_count, pa.Table.from_pandas(pd.DataFrame({'a': [1, 2]})).num_rows)\n"
    )
    assert _py(code, tmp_path).split() == ["False", "1", "2"]


def test_pydantic_models_made_while_lancedb_loads_still_validate(tmp_path):
    code = (
        "import pydantic\n"
        "from desktop_search.core.lancedb_import import import_lancedb\n"
        "import_lancedb()\n"
        "print(pydantic.BaseModel.model_config)\n"
        "from lance_namespace_urllib3_client.models import ListTablesResponse\n"
        "print(ListTablesResponse(tables=['a']).tables)\n"
        "try:\n    ListTablesResponse(tables=[{'not': 'a name'}])\n"
        "except pydantic.ValidationError:\n    print('rejected')\n"
        "class Later(pydantic.BaseModel):\n    x: int\n"
        "print(Later.__pydantic_complete__)\n"
    )
    assert _py(code, tmp_path).split("\n")[:4] == ["{}", "['a']", "rejected", "True"]
