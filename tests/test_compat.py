"""Old import paths (the 0.1 layout) still work with a DeprecationWarning, and ``gantool.upgrade`` moves them."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from gantool import _compat
from gantool.upgrade import main as upgrade_main
from gantool.upgrade import rewrite_imports


def _fresh_import(name: str):
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    return importlib.import_module(name)


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_every_old_module_imports_with_a_deprecation_warning(old: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated .* 0.3; import from gantool"):
        module = _fresh_import(old)
    target = importlib.import_module(_compat.MOVED[old][0])
    public = [n for n in dir(target) if not n.startswith("_")]
    assert all(getattr(module, n) is getattr(target, n) for n in public)  # the very same objects


def test_old_names_resolve_to_the_same_objects_across_split_modules() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from gantool.nets.unet import UNet as OldUNet
        from gantool.settings import InferenceOptions, flag, load_size_problems
    from gantool import flag as new_flag
    from gantool.lib.nets.unet import UNet
    from gantool.lib.options import load_size_problems as new_problems
    from gantool.plugin.common import InferenceOptions as NewInference

    assert OldUNet is UNet and flag is new_flag and load_size_problems is new_problems
    assert InferenceOptions is NewInference


def test_unknown_attribute_of_an_old_module_names_the_new_homes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        settings = _fresh_import("gantool.settings")
    with pytest.raises(AttributeError, match="moved to gantool.plugin.common"):
        settings.no_such_thing  # noqa: B018


def test_the_warning_points_at_the_importing_line(tmp_path: Path) -> None:
    (tmp_path / "oldplugin.py").write_text("import os\nfrom gantool.settings import flag\n")
    result = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c", "import oldplugin"],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "oldplugin.py:2: DeprecationWarning: gantool.settings is deprecated" in result.stderr


def test_rewrite_imports_moves_each_name_to_its_new_home() -> None:
    source = (
        "import os\n"
        "from gantool.settings import flag, InferenceOptions, load_size_problems\n"
        "from gantool.task import Task as Base\n"
        "if True:\n"
        "    from gantool.nets.unet import (\n"
        "        UNet,\n"
        "    )\n"
        "import gantool.io as gio\n"
        "x = 'from gantool.settings import flag'\n"
    )
    assert rewrite_imports(source) == (
        "import os\n"
        "from gantool import flag\n"
        "from gantool.plugin.common import InferenceOptions\n"
        "from gantool.lib.options import load_size_problems\n"
        "from gantool import Task as Base\n"
        "if True:\n"
        "    from gantool.lib.nets.unet import UNet\n"
        "import gantool.image.io as gio\n"
        "x = 'from gantool.settings import flag'\n"
    )


def test_upgrade_command_rewrites_in_place_and_check_reports(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "pkg" / "card.py"
    plugin.parent.mkdir()
    plugin.write_text("from gantool.settings import flag\n")
    assert upgrade_main(["--check", str(tmp_path)]) == 1
    assert plugin.read_text() == "from gantool.settings import flag\n"
    assert upgrade_main([str(tmp_path)]) == 0
    assert plugin.read_text() == "from gantool import flag\n"
    assert upgrade_main(["--check", str(tmp_path)]) == 0
    broken = tmp_path / "broken.py"
    broken.write_text("from gantool.settings import no_such_name\n")
    assert upgrade_main([str(broken)]) == 2
    assert "no_such_name has no new home" in capsys.readouterr().err
