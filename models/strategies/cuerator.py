"""CueRator's rule (models/cuerator.py) on the similarities without ``other``: with one parameter
vector from the config (``cuerator_rule``: a rule file fitted by run_cuerator.sh --fit-rule, or
``cuerator.params``), or with each video's own from a trained policy (``cuerator_policy``)."""

from __future__ import annotations

from common.errors import UserError
from metrics import labels_to_matrix
from models import cuerator
from models.decoders import Decoded, check_similarities
from models.strategies import Decoder, Strategy


def decode_rule(sim_audio, sim_visual, params) -> Decoded:
    """Labels by the rule over the K - 1 classes; its background (index K - 1) is ``other``."""
    sim_a, sim_v = check_similarities(sim_audio, sim_visual)
    labels = cuerator.decide(sim_a[..., :-1], sim_v[..., :-1], params)
    return Decoded(labels, labels_to_matrix(labels, sim_a.shape[2]))


def rule_settings(config) -> dict | None:
    """``{"params": [10]}`` from ``cuerator.params`` or ``cuerator.rule_file`` (checked against the
    configured family); None when the config gives neither."""
    settings = getattr(config, "cuerator", None)
    if settings is None or (settings.params is None and settings.rule_file is None):
        return None
    if settings.params is not None:
        return {"params": cuerator.checked_params(settings.params, "cuerator.params")}
    rule = cuerator.read_rule_file(settings.rule_file)
    fitted_on = (rule.get("encoder") or {}).get("family")
    if fitted_on != config.encoder.family:
        raise UserError(f"{settings.rule_file} was fitted on the {fitted_on} family's similarities, but encoder.family "
                        f"is {config.encoder.family}; fit a rule on this encoder (run_cuerator.sh --fit-rule)")
    return {"params": rule["params"]}


def required_rule_settings(config) -> dict:
    settings = rule_settings(config)
    if settings is None:
        raise UserError("strategy cuerator_rule needs its 10 parameters: set cuerator.rule_file (what "
                        "`bash run_cuerator.sh --fit-rule` writes) or cuerator.params")
    return settings


def load_policy(checkpoint, state: dict, device) -> Decoder:
    policy = cuerator.policy_from_checkpoint(state, checkpoint, device)

    def per_video(audio, vision) -> dict:
        return {"params": cuerator.map_params(policy(vision.float(), audio.float()).cpu().numpy())}

    config = state["config"]
    return Decoder(POLICY, str(checkpoint), per_video=per_video,
                   widths={"audio": int(config["audio_dim"]), "vision": int(config["video_dim"])},
                   encoder={"family": config.get("encoder")})


RULE = Strategy("cuerator_rule", "CueRator", "CueRator's rule with one fitted parameter vector (cuerator.rule_file "
                "or cuerator.params)", "similarities", decode_rule, settings=required_rule_settings,
                available=lambda config: rule_settings(config) is not None)
POLICY = Strategy("cuerator_policy", "CueRator", "CueRator's rule with each video's parameters from a trained "
                  "policy checkpoint", "checkpoint", decode_rule, load_policy, cuerator.is_policy_checkpoint,
                  reads="a CueRator policy checkpoint (run_cuerator.sh's checkpoints/best.ckpt, or CueRator's "
                        "own policy_best.ckpt)")
STRATEGIES = (RULE, POLICY)
