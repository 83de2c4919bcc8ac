"""The preflight finds the optional packages a config asks for that are not installed
(TensorBoard, torchcodec, decord) and names what to install: status 2, before any model
or loader is built."""

import pytest

from slowmask.config import load_config
from slowmask.engine import preflight
from tool_scripts import DEMO_CFG, load_tool

run_net = load_tool("run_net")


def absent(*modules):
    """A package_installed that finds every module but `modules`."""
    return lambda module: module not in modules


def test_tensorboard_asked_for_but_missing_fails_the_run_before_building(demo_data_dir, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setattr(preflight, "package_installed", absent("tensorboard"))
    monkeypatch.setattr(preflight, "build_dataset", lambda *args: pytest.fail("a split was built"))
    status = run_net.main(["--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                           "TENSORBOARD.ENABLE", "True"])
    assert status == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "PreflightError: the run cannot start: TENSORBOARD.ENABLE True needs the tensorboard package, which is not "
        "installed: pip install -e '.[tensorboard]' (or pip install tensorboard); or set TENSORBOARD.ENABLE False "
        f"(traceback in {tmp_path / 'stdout.log'})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.log"]  # no tensorboard folder, no checkpoint


@pytest.mark.parametrize("backend, install", [
    ("torchcodec", "pip install -e '.[torchcodec]'"),
    ("decord", "pip install decord (no wheel exists for some platforms)"),
])
def test_a_decoding_backend_whose_package_is_missing_is_named(backend, install, monkeypatch):
    monkeypatch.setattr(preflight, "package_installed", absent(backend))
    cfg = load_config(DEMO_CFG, ["DATA.DECODING_BACKEND", backend])
    assert preflight.missing_package_problems(cfg) == [
        f"DATA.DECODING_BACKEND {backend!r} needs the {backend} package, which is not installed: {install}; "
        "or set DATA.DECODING_BACKEND 'pyav'"]


def test_packages_the_config_does_not_ask_for_are_not_required(monkeypatch):
    monkeypatch.setattr(preflight, "package_installed", absent("tensorboard", "torchcodec", "decord"))
    assert preflight.missing_package_problems(load_config(DEMO_CFG)) == []
