"""The decoding strategies registry: what each strategy needs, and a newly registered strategy
offered by every entry point."""

import numpy as np
import pytest

import eval_zero_shot
import localize
from models import strategies
from models.decoders import decode_fine_tuning, decode_training_free
from models.strategies import Strategy, UnknownStrategy
from webapp.explorer import Explorer


def test_registered_strategies_and_what_they_need():
    assert strategies.names("similarities") == ("v0", "v01", "cuerator_rule")
    assert strategies.names("checkpoint") == ("v1", "cuerator_policy", "complex_fusion")
    rng = np.random.default_rng(0)
    sims = rng.standard_normal((2, 4, 10, 5)).astype(np.float32)
    v01 = strategies.strategy("v01").decoder().decode(*sims)
    np.testing.assert_array_equal(v01.segment_labels, decode_training_free(*sims, use_other=True).segment_labels)
    np.testing.assert_array_equal(strategies.decode("v1", *sims).segment_labels,
                                  decode_fine_tuning(*sims).segment_labels)
    assert strategies.strategy("v0").decoder().name == "training-free v0"


def test_strategy_mistakes_name_the_key_and_the_choices(tmp_path):
    with pytest.raises(UnknownStrategy, match=r"eval.strategy = 'v1' is not allowed; choose one of 'v0', 'v01', "
                                              r"'cuerator_rule' \(v1 needs a checkpoint\)"):
        strategies.strategy("v1", "eval.strategy", needs="similarities")
    with pytest.raises(UnknownStrategy, match="strategy v1 decodes with a trained model: give it a checkpoint"):
        strategies.strategy("v1").decoder()
    with pytest.raises(UnknownStrategy, match="strategy v0 decodes the frozen embeddings and takes no checkpoint"):
        strategies.strategy("v0").decoder(tmp_path / "best.pt")


def _always_background(sim_audio, sim_visual):
    n, t, k = np.shape(sim_audio)
    return decode_training_free(np.zeros((n, t, k)), np.ones((n, t, k)), use_other=False)


def test_a_registered_strategy_is_offered_everywhere(monkeypatch, capsys, stand_in):
    extra = Strategy("nothing", "training-free", "never an event", "similarities", _always_background)
    monkeypatch.setattr(strategies, "_registry", {**strategies.registry(), "nothing": extra})
    for main in (eval_zero_shot.main, localize.main):
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        assert "nothing" in capsys.readouterr().out
    from pipeline.localize import Localizer

    explorer = Explorer(Localizer(stand_in))
    assert list(explorer.decodings)[0] == "training-free v01"  # the default first
    assert "training-free nothing" in explorer.decodings
