"""Entry points: overrides anywhere, whole --help texts, shell scripts that say what is missing."""

import importlib
import subprocess
import sys

import pytest

from common import cli
from conftest import REPO
from tools import extract_features


def test_overrides_may_follow_an_option_that_takes_several_values():
    parser = cli.parser_with_config(extract_features.__doc__, "x.yaml")
    parser.add_argument("--splits", nargs="+", choices=("train", "val", "test"))
    args = cli.parse(parser, ["encoder.size=tiny", "--splits", "val", "test", "device=cpu", "--config", "a.yaml"])
    assert args.splits == ["val", "test"] and args.overrides == ["encoder.size=tiny", "device=cpu"]
    assert args.config == "a.yaml"


@pytest.mark.parametrize("name", ["eval_zero_shot", "train", "tools.extract_features", "tools.prepare_videos",
                                  "tools.score_predictions"])
def test_help_shows_the_whole_description(name, capsys):
    module = importlib.import_module(name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    first_paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert first_paragraph.endswith((".", ":")), first_paragraph
    assert first_paragraph in out


@pytest.mark.parametrize("script", ["run_baseline_v0.sh", "run_baseline_v1_train_fully.sh"])
def test_scripts_without_the_packages_say_to_run_make_venv(script, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = subprocess.run(["bash", str(REPO / script)], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": str(bare / "bin" / "python")})
    assert result.returncode == 2
    assert "lacks the toolkit's packages" in result.stderr and "make venv" in result.stderr
    assert "Traceback" not in result.stderr
