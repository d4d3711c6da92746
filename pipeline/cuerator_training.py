"""CueRator on cached features: fit the global rule (one parameter vector, the best of Sobol
candidates on the training split) and train the policy (each video its own parameters) with
REINFORCE, selected on the validation split's frame accuracy, reported on test with all classes.

The training split is scored over the seen classes, the others over all classes, as in CueRator
(``other`` is never a candidate: the rule's background is). Only embeddings and similarities are
read, so an epoch is seconds; ``resume`` continues an interrupted run exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.config import to_dict
from common.errors import UserError
from common.files import atomic_write_json, writing
from common.schema import Config
from data.annotations import AnnotationIndex
from models import cuerator
from models.segment_encoder import resolve_device
from models.similarity import segment_similarities
from models.strategies.cuerator import decode_rule
from pipeline.evaluate import Evaluation, cached_videos, class_texts, score, subset_counts
from pipeline.extraction import ensure_features
from pipeline.run_state import (RUN_MESSAGES, check_resumed_epochs, config_changes, restore_rng, rng_states,
                                save_checkpoint, tensorboard_writer, write_history)

HISTORY_COLUMNS = ("epoch", "train_loss", "train_reward", "selection_split", "frame_accuracy", "accuracy",
                   "segment_f1", "event_f1", "average", "seconds")


@dataclass
class SplitSims:
    """A split's cached videos with what CueRator reads: embeddings (by cache row) and the
    similarities over the candidate classes, with and without ``other`` (the last column)."""

    split: str
    features: object  # data.feature_cache.SplitFeatures
    rows: np.ndarray
    videos: object  # data.annotations.VideoSet, kept videos in order
    excluded: object
    sim_audio: np.ndarray  # [N, T, K], K - 1 classes + other
    sim_visual: np.ndarray

    @property
    def truth(self) -> np.ndarray:
        """``[N, T]`` class per segment, background = K - 1 (the rule's C)."""
        return self.videos.segment_classes

    def rule_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.sim_audio[..., :-1], self.sim_visual[..., :-1]


def load_split(config: Config, cache, index: AnnotationIndex, split: str, device) -> SplitSims:
    vocabulary = index.seen_vocabulary if split == "train" else index.all_vocabulary
    features, rows, kept, excluded = cached_videos(cache, index.videos(split, vocabulary=vocabulary))
    texts = class_texts(cache, config, vocabulary.names, device)
    sim_a, sim_v = segment_similarities(features, rows, *texts, config.eval.block_videos)
    return SplitSims(split, features, rows, kept, excluded, sim_a, sim_v)


def frame_accuracy(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-video frame accuracy (float32, as CueRator's reward)."""
    return (labels == truth).mean(axis=-1).astype(np.float32)


class CueRatorRun:
    """One run folder: ``rule.json`` (the global rule), ``checkpoints/{best,last}.ckpt`` (the
    policy, in CueRator's checkpoint layout), ``history.csv`` and TensorBoard logs."""

    def __init__(self, config: Config, folder: Path, fit_rule_only: bool = False):
        self.config = config
        self.folder = Path(folder)
        self.checkpoints = self.folder / "checkpoints"
        self.device = resolve_device(config.device)
        index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
        selection = config.cuerator.selection
        needs = {"train": "CueRator's training (the rule is fitted and the policy trained on it)", "test": "the test"}
        if not fit_rule_only:
            needs[selection] = "policy selection, cuerator.selection"
        index.require_splits(needs)
        splits = list(dict.fromkeys(["train", *([] if fit_rule_only else [selection]), "test"]))
        cache = ensure_features(config, splits, index)
        self.cache = cache
        self.data = {split: load_split(config, cache, index, split, self.device) for split in splits}
        train = self.data["train"]
        self.widths = {"audio": int(train.features.audio.shape[-1]), "vision": int(train.features.vision.shape[-1])}

    def excluded_by_split(self) -> dict:
        return {split: subset_counts(data.excluded) for split, data in self.data.items()}

    # --- the global rule ----------------------------------------------------------------------

    def fit_rule(self) -> dict:
        """The global oracle on the training split, written to ``rule.json``."""
        cfg = self.config.cuerator
        train = self.data["train"]
        with tqdm(total=cfg.oracle_candidates, unit="candidate", desc="global rule", dynamic_ncols=True) as bar:
            params, accuracy = cuerator.global_oracle(*train.rule_inputs(), train.truth, cfg.oracle_candidates,
                                                      cfg.oracle_seed, self.device, bar.update)
        rule = {"format": cuerator.RULE_FORMAT, "params": [float(x) for x in params],
                "param_names": list(cuerator.PARAM_NAMES), "param_ranges": cuerator.PARAM_RANGES.tolist(),
                "encoder": to_dict(self.config.encoder), "cache": str(self.cache.root),
                "fitted_on": {"split": "train", "videos": len(train.rows), "classes": train.sim_audio.shape[-1] - 1,
                              "objective": "mean per-video frame accuracy", "frame_accuracy": accuracy,
                              "candidates": cfg.oracle_candidates, "seed": cfg.oracle_seed}}
        with writing(self.folder, **RUN_MESSAGES):
            self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.folder / "rule.json", rule, **RUN_MESSAGES)
        print(f"global rule: train frame accuracy {100 * accuracy:.2f} over {cfg.oracle_candidates} candidates "
              f"-> {self.folder / 'rule.json'}")
        return rule

    def evaluate_rule(self, params, split: str = "test") -> Evaluation:
        data = self.data[split]
        return score(data.videos, decode_rule(data.sim_audio, data.sim_visual, params), "cuerator_rule",
                     data.excluded, f1_batch=self.config.eval.f1_batch)

    # --- the policy ---------------------------------------------------------------------------

    def _policy(self) -> cuerator.CueRatorPolicy:
        cfg = self.config.cuerator
        return cuerator.CueRatorPolicy(self.widths["vision"], self.widths["audio"], cfg.model_dim, cfg.num_heads,
                                       cfg.ffn_dim, cfg.dropout).to(self.device)

    def _embeddings(self, data: SplitSims, members: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        audio, vision = data.features.gather(data.rows[members])
        return (torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device) for x in (audio, vision))

    def video_params(self, policy, data: SplitSims, block: int = 4096) -> np.ndarray:
        """Each video's parameters ``[N, 10]`` from the policy in eval mode."""
        policy.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(data.rows), block):
                audio, vision = self._embeddings(data, np.arange(start, min(start + block, len(data.rows))))
                parts.append(cuerator.map_params(policy(vision, audio).cpu().numpy()))
        return np.concatenate(parts) if parts else np.zeros((0, cuerator.NUM_PARAMS), np.float32)

    def evaluate_policy(self, policy, split: str) -> Evaluation:
        data = self.data[split]
        decoded = decode_rule(data.sim_audio, data.sim_visual, self.video_params(policy, data))
        return score(data.videos, decoded, "cuerator_policy", data.excluded, f1_batch=self.config.eval.f1_batch)

    def _train_epoch(self, policy, optimizer, epoch: int) -> tuple[float, float]:
        """One pass of REINFORCE over the training split, in a seeded order; the mean loss and
        reward. ``self.timings``: seconds spent reading embeddings, in the policy (forward and
        backward) and in the rule (the rewards)."""
        cfg = self.config.cuerator
        train = self.data["train"]
        policy.train()
        order = torch.randperm(len(train.rows), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        sim_a, sim_v = (np.ascontiguousarray(x) for x in train.rule_inputs())
        losses, rewards = [], []
        self.timings = dict.fromkeys(("read", "policy", "rule"), 0.0)
        for start in range(0, len(order), cfg.batch_size):
            clock = time.perf_counter()
            members = np.sort(order[start:start + cfg.batch_size].numpy())
            audio, vision = self._embeddings(train, members)
            clock = self._lap("read", clock)
            mu = policy(vision, audio)
            eps = torch.randn(len(members), cfg.samples, cuerator.NUM_PARAMS, device=self.device)
            params = torch.from_numpy(cuerator.map_params(cuerator.sampled_actions(mu, eps).cpu().numpy()))
            clock = self._lap("policy", clock)
            a, v = torch.from_numpy(sim_a[members]), torch.from_numpy(sim_v[members])  # [B, T, C]
            terms = cuerator.cues(a, v)
            thresholds = cuerator.combine([term[:, None] for term in terms], params[..., None, None])  # [B, K, T, C]
            labels = cuerator.vote(a[:, None], v[:, None], *thresholds).numpy()  # [B, K, T]
            reward = frame_accuracy(labels, train.truth[members][:, None])
            clock = self._lap("rule", clock)
            loss = cuerator.reinforce_loss(mu, eps, reward)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            rewards.append(float(reward.mean()))
            self._lap("policy", clock)
        return float(np.mean(losses)), float(np.mean(rewards))

    def _lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] += now - since
        return now

    def _payload(self, policy, optimizer, epoch: int, best: dict | None, history: list, last: bool) -> dict:
        """CueRator's checkpoint layout (their code loads it), with this toolkit's record under ``toolkit``."""
        cfg = self.config.cuerator
        payload = {
            "policy_state_dict": policy.state_dict(),
            "optimizer_state_dict": optimizer.state_dict() if last else None,
            "epoch": epoch,
            "best_val_metric": best["frame_accuracy"] if best else None,
            "best_val_metric_name": "frame_acc",
            "config": {"encoder": self.config.encoder.family, "video_dim": self.widths["vision"],
                       "audio_dim": self.widths["audio"], "input_dim": self.widths["vision"] + self.widths["audio"],
                       "action_dim": cuerator.NUM_PARAMS, "sequence_length": cuerator.CueRatorPolicy.SEGMENTS,
                       "fixed_action_std": cuerator.FIXED_STD, "train_mode": "rl", "train_reward_metric": "frame_acc",
                       "selection_metric_name": "frame_acc", "policy_model_dim": cfg.model_dim,
                       "policy_transformer_nhead": cfg.num_heads, "policy_transformer_ff_dim": cfg.ffn_dim,
                       "policy_dropout": cfg.dropout, "seed": cfg.seed, "param_names": list(cuerator.PARAM_NAMES),
                       "param_ranges": cuerator.PARAM_RANGES.tolist(), "train_split": "train",
                       "val_split": cfg.selection, "test_split": "test"},
            "toolkit": {"config": to_dict(self.config), "widths": self.widths, "epoch": epoch},
        }
        if last:
            payload["toolkit"].update(history=history, best=best, **rng_states(self.device))
        return payload

    def _resume(self, policy, optimizer, last: Path) -> tuple[int, list, dict]:
        if not last.exists():
            raise UserError(f"--resume: there is no policy training to continue in {self.folder} ({last} not found)")
        state = torch.load(last, map_location="cpu", weights_only=True)
        changed = config_changes(state["toolkit"]["config"], self.config, "cuerator.epochs")
        if changed:
            raise UserError(f"--resume: the config differs from the interrupted run's ({last}); only cuerator.epochs "
                            "may change:\n  " + "\n  ".join(changed))
        policy.load_state_dict(state["policy_state_dict"])
        optimizer.load_state_dict(state["optimizer_state_dict"])
        restore_rng(state["toolkit"], self.device)
        check_resumed_epochs(last, state["epoch"], self.config.cuerator.epochs, "cuerator.epochs")
        print(f"resuming after epoch {state['epoch']} from {last}")
        return state["epoch"], state["toolkit"]["history"], state["toolkit"]["best"]

    def train_policy(self, resume: bool = False) -> tuple[Evaluation, dict, list]:
        """REINFORCE epochs, each followed by the selection split's scores; the best epoch by mean
        per-video frame accuracy (the first on ties) is ``best.ckpt`` and is scored on test."""
        cfg = self.config.cuerator
        last = self.checkpoints / "last.ckpt"
        with writing(self.folder, **RUN_MESSAGES):
            self.folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        policy = self._policy()
        optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        done, history, best = 0, [], None
        if resume:
            done, history, best = self._resume(policy, optimizer, last)
        elif last.exists():
            raise UserError(f"{self.folder} already holds a policy training: add --resume to continue it, or set "
                            "output.name to start a new one")
        write_history(self.folder, history, "w", HISTORY_COLUMNS)
        tensorboard = tensorboard_writer(self.folder, cfg.tensorboard, done)
        selection = self.data[cfg.selection]
        for epoch in tqdm(range(done + 1, cfg.epochs + 1), initial=done, total=cfg.epochs, unit="epoch",
                          desc="policy", dynamic_ncols=True):
            start = time.perf_counter()
            loss, reward = self._train_epoch(policy, optimizer, epoch)
            evaluation = self.evaluate_policy(policy, cfg.selection)
            accuracy = float(frame_accuracy(evaluation.decoded.segment_labels, selection.truth).mean())
            record = {"epoch": epoch, "train_loss": loss, "train_reward": reward, "selection_split": cfg.selection,
                      "frame_accuracy": accuracy, **evaluation.summaries["total"],
                      "seconds": round(time.perf_counter() - start, 3)}
            history.append(record)
            write_history(self.folder, [record], "a", HISTORY_COLUMNS)
            if tensorboard:
                tensorboard.add_scalar("train/loss", loss, epoch)
                tensorboard.add_scalar("train/reward", reward, epoch)
                for key in ("frame_accuracy", "segment_f1", "event_f1", "average"):
                    tensorboard.add_scalar(f"{cfg.selection}/{key}", record[key], epoch)
            if best is None or accuracy > best["frame_accuracy"]:
                best = record
                save_checkpoint(self.checkpoints / "best.ckpt",
                           self._payload(policy, optimizer, epoch, best, history, last=False))
            save_checkpoint(last, self._payload(policy, optimizer, epoch, best, history, last=True))
            tqdm.write(f"epoch {epoch}/{cfg.epochs}: loss {loss:.4f} reward {reward:.4f} | {cfg.selection} frame "
                       f"accuracy {100 * accuracy:.2f} Avg {100 * record['average']:.1f} | {record['seconds']:.1f} s")
        if tensorboard:
            tensorboard.close()
        if best is None:
            raise UserError("cuerator.epochs is 0: nothing was trained")
        best_state = torch.load(self.checkpoints / "best.ckpt", map_location="cpu", weights_only=True)
        policy = cuerator.policy_from_checkpoint(best_state, self.checkpoints / "best.ckpt", self.device)
        return self.evaluate_policy(policy, "test"), best, history


def describe(config: Config) -> str:
    cfg = config.cuerator
    return (f"CueRator policy ({cfg.model_dim}-d, {cfg.num_heads} heads, K = {cfg.samples}, {cfg.epochs} epochs, "
            f"selected on {cfg.selection} frame accuracy)")
