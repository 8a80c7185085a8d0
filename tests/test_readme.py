"""The README stays true: every setting is in its configuration table with its real default."""

from __future__ import annotations

import re

from app.settings import Settings
from tests.conftest import ROOT


def test_configuration_table_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", readme, flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        assert variable in rows, f"README configuration table lacks {variable}"
        default = field.default
        if default is not None:
            assert f"`{default}`" in rows[variable] or str(default) in rows[variable], (variable, default)
