"""Train the phase stream's unpaired CycleGAN (models/phase_gan.py) on the train split's prepared
audio, as the paper gives it: LSGAN adversarial terms both ways, cycle (lambda 10), identity
(lambda 2, each generator given the other domain's sample resized by adaptive pooling to its
input), distribution matching (lambda 2, IF -> mel only), real labels 0.9, instance noise on the
discriminators' inputs, a discriminator step skipped when its loss is at most 0.1, Adam (0.5,
0.999) with a cosine schedule. A step's IF and mel samples come from different clips (the mel
batch is the IF batch's clips shifted by one video). Resumable exactly: the order of an epoch's
batches depends only on the seed and the epoch, and the RNG states are kept.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from common.config import to_dict
from common.errors import UserError
from common.files import writing
from common.schema import Config
from data.annotations import AnnotationIndex
from data.loading import decoding_worker, media_paths, num_workers
from data.preprocess import MediaError
from models.families import family
from models.phase_gan import (SIZES, Discriminator, Generator, distribution_loss, save_generator, to_if_domain,
                              to_mel_domain)
from models.segment_encoder import resolve_device
from pipeline.extraction import generator_identity
from pipeline.run_state import (RUN_MESSAGES, check_resumed_epochs, config_changes, restore_rng, rng_states,
                                save_checkpoint, tensorboard_writer, write_history)

HISTORY_COLUMNS = ("epoch", "generator_loss", "discriminator_loss", "cycle", "identity", "distribution",
                   "discriminator_steps", "seconds")


class ClipPairs(Dataset):
    """One train video's segments in both domains: ``(IF [10, C, F, T], encoder input [10, C, F', T])``."""

    def __init__(self, wavs: list[Path], decode_phase, decode_audio):
        self.wavs, self.decode_phase, self.decode_audio = wavs, decode_phase, decode_audio

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i):
        return self.decode_phase(self.wavs[i]), self.decode_audio(self.wavs[i])


def _collate(items):
    return torch.cat([phase for phase, _ in items]), torch.cat([audio for _, audio in items])


class PhaseGanRun:
    def __init__(self, config: Config, folder: Path):
        self.config, self.settings = config, config.phase_gan
        self.folder = Path(folder)
        self.device = resolve_device(config.device)
        self.backbone = family(config.encoder.family)
        if self.backbone.PHASE_INPUT is None:
            raise UserError(f"the {config.encoder.family} family defines no phase stream to translate (the imagebind "
                            "family does)")
        index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
        index.require_splits({"train": "the phase generator's training"})
        videos = index.videos("train")
        wavs = [media_paths(config.data.media_root, "train", c, v)[0] for v, c in zip(videos.vid_names,
                                                                                     videos.categories)]
        missing = [w for w in wavs if not w.is_file()]
        if missing:
            raise UserError(f"the phase generator learns from the train split's audio, but {len(missing)} of its "
                            f"{len(wavs)} WAVs are not under {config.data.media_root} (e.g. {missing[0]})")
        self.wavs = wavs[:self.settings.max_videos] if self.settings.max_videos else wavs

    def _models(self):
        size = SIZES[self.settings.size]
        phase, audio = self.backbone.PHASE_INPUT, self.backbone.AUDIO_INPUT
        torch.manual_seed(self.settings.seed)
        nets = {"if_to_mel": Generator(phase, audio, size["filters"], size["blocks"]),
                "mel_to_if": Generator(audio, phase, size["filters"], size["blocks"]),
                "judge_mel": Discriminator(audio[0], size["disc_filters"]),
                "judge_if": Discriminator(phase[0], size["disc_filters"])}
        return {name: net.to(self.device) for name, net in nets.items()}

    def _batches(self, epoch: int):
        """The epoch's batches of ``batch_size`` segments: IF and the encoder input of other clips."""
        order = torch.randperm(len(self.wavs), generator=torch.Generator().manual_seed(
            self.settings.seed * 100_003 + epoch)).tolist()
        workers = min(num_workers(self.config.extract.num_workers), len(order))
        loader = DataLoader(ClipPairs([self.wavs[i] for i in order], self.backbone.decode_phase,
                                      self.backbone.decode_audio),
                            batch_size=2, num_workers=workers, collate_fn=_collate, worker_init_fn=decoding_worker)
        size, pending_if, pending_mel = self.settings.batch_size, [], []
        try:
            for phase, audio in loader:
                pending_if.append(phase)
                pending_mel.append(audio)
                phases, audios = torch.cat(pending_if), torch.cat(pending_mel)
                while len(phases) >= size + 10:  # a clip's segments stay apart from its own mel
                    yield phases[:size], audios[10:size + 10]
                    phases, audios = phases[size:], audios[size:]
                pending_if, pending_mel = [phases], [audios]
        except MediaError as err:
            raise UserError(f"{err}\n(fix or replace the file and run again; --resume continues)") from None

    def fit(self, resume: bool = False) -> dict:
        s = self.settings
        nets = self._models()
        generators = list(nets["if_to_mel"].parameters()) + list(nets["mel_to_if"].parameters())
        judges = list(nets["judge_mel"].parameters()) + list(nets["judge_if"].parameters())
        optim_g = torch.optim.Adam(generators, lr=s.lr_generator, betas=(0.5, 0.999))
        optim_d = torch.optim.Adam(judges, lr=s.lr_discriminator, betas=(0.5, 0.999))
        schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=s.epochs) for o in (optim_g, optim_d)]
        last, done, history = self.folder / "checkpoints" / "last.pt", 0, []
        if resume:
            if not last.exists():
                raise UserError(f"--resume: there is no phase GAN training to continue in {self.folder} ({last} not "
                                "found)")
            state = torch.load(last, map_location="cpu", weights_only=False)
            changed = config_changes(state["config"], self.config, "phase_gan.epochs")
            if changed:
                raise UserError(f"--resume: the config differs from the interrupted run's ({last}); only "
                                "phase_gan.epochs may change:\n  " + "\n  ".join(changed))
            for name, net in nets.items():
                net.load_state_dict(state["nets"][name])
            optim_g.load_state_dict(state["optim_g"])
            optim_d.load_state_dict(state["optim_d"])
            for schedule, saved in zip(schedules, state["schedules"]):
                schedule.load_state_dict(saved)
            restore_rng(state, self.device)
            done, history = state["epoch"], state["history"]
            check_resumed_epochs(last, done, s.epochs, "phase_gan.epochs")
        elif last.exists():
            raise UserError(f"{self.folder} already holds a phase GAN training: add --resume to continue it, or set "
                            "output.name to start a new one")
        with writing(self.folder, **RUN_MESSAGES):
            self.folder.mkdir(parents=True, exist_ok=True)
        write_history(self.folder, history, "w", HISTORY_COLUMNS)
        tensorboard = tensorboard_writer(self.folder, s.tensorboard, done)
        for epoch in range(done + 1, s.epochs + 1):
            start = time.perf_counter()
            totals = self._epoch(epoch, nets, optim_g, optim_d)
            for schedule in schedules:
                schedule.step()
            record = {"epoch": epoch, **totals, "seconds": round(time.perf_counter() - start, 3)}
            history.append(record)
            write_history(self.folder, [record], "a", HISTORY_COLUMNS)
            if tensorboard:
                for key in ("generator_loss", "discriminator_loss", "cycle", "identity", "distribution"):
                    tensorboard.add_scalar(f"train/{key}", record[key], epoch)
            save_checkpoint(last, {"nets": {name: net.state_dict() for name, net in nets.items()},
                                   "optim_g": optim_g.state_dict(), "optim_d": optim_d.state_dict(),
                                   "schedules": [schedule.state_dict() for schedule in schedules],
                                   "config": to_dict(self.config), "epoch": epoch, "history": history,
                                   **rng_states(self.device)})
            save_generator(self.folder / "generator.pt", nets["if_to_mel"], generator_identity(self.config),
                           {"size": s.size, "epoch": epoch})
            print(f"epoch {epoch}/{s.epochs}: generator {record['generator_loss']:.4f} discriminator "
                  f"{record['discriminator_loss']:.4f} cycle {record['cycle']:.4f} | {record['seconds']:.1f} s")
        if tensorboard:
            tensorboard.close()
        return {"epochs": s.epochs, "history": history, "generator": str(self.folder / "generator.pt")}

    def _epoch(self, epoch: int, nets: dict, optim_g, optim_d) -> dict:
        s = self.settings
        for net in nets.values():
            net.train()
        sums = dict.fromkeys(("generator_loss", "discriminator_loss", "cycle", "identity", "distribution"), 0.0)
        steps, judged = 0, 0
        g, f, judge_mel, judge_if = nets["if_to_mel"], nets["mel_to_if"], nets["judge_mel"], nets["judge_if"]
        for phase, audio in tqdm(self._batches(epoch), desc=f"phase GAN epoch {epoch}", unit="batch", leave=False):
            real_if, real_mel = to_if_domain(phase.to(self.device)), to_mel_domain(audio.to(self.device))
            fake_mel, fake_if = g(real_if), f(real_mel)
            adversarial = ((judge_mel(fake_mel) - 1) ** 2).mean() + ((judge_if(fake_if) - 1) ** 2).mean()
            cycle = F.l1_loss(f(fake_mel), real_if) + F.l1_loss(g(fake_if), real_mel)
            identity = (F.l1_loss(g(F.adaptive_avg_pool2d(real_mel, g.in_shape[1:])), real_mel)
                        + F.l1_loss(f(F.adaptive_avg_pool2d(real_if, f.in_shape[1:])), real_if))
            matching = distribution_loss(fake_mel, real_mel)
            loss_g = (adversarial + s.cycle_weight * cycle + s.identity_weight * identity
                      + s.distribution_weight * matching)
            optim_g.zero_grad(set_to_none=True)
            loss_g.backward()
            optim_g.step()
            loss_d = torch.zeros((), device=self.device)
            for judge, real, fake in ((judge_mel, real_mel, fake_mel), (judge_if, real_if, fake_if)):
                noisy = (lambda x: x + s.instance_noise * torch.randn_like(x))
                part = 0.5 * (((judge(noisy(real)) - s.real_label) ** 2).mean()
                              + (judge(noisy(fake.detach())) ** 2).mean())
                loss_d = loss_d + part.detach()
                if part.item() > s.skip_discriminator_below:
                    optim_d.zero_grad(set_to_none=True)
                    part.backward()
                    optim_d.step()
                    judged += 1
            steps += 1
            for key, value in (("generator_loss", loss_g), ("discriminator_loss", loss_d), ("cycle", cycle),
                               ("identity", identity), ("distribution", matching)):
                sums[key] += float(value.detach())
        if steps == 0:
            raise UserError(f"the train split's audio gives fewer than {s.batch_size + 10} segments: phase_gan.batch_size "
                            "is too large for it")
        return {**{key: value / steps for key, value in sums.items()}, "discriminator_steps": judged}
