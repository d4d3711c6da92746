"""Train the phase generator of complex-valued fusion's 4 streams: an unpaired CycleGAN between the train split's
instantaneous frequency and the audio encoder's input (the paper's losses and settings, phase_gan.*); its G_IF->mel
is what complex.generator reads.

    bash run_complex_fusion.sh --phase-gan                      # = this with configs/complex_fusion_4stream.yaml
    python train_phase_gan.py --config configs/complex_fusion_4stream.yaml --resume

Writes <output.root>/<output.name or phase_gan>/: generator.pt, checkpoints/last.pt, history.csv, TensorBoard logs.
"""

from __future__ import annotations

from pathlib import Path

from common import cli
from pipeline.outputs import RunWriter
from pipeline.phase_gan_training import PhaseGanRun

DEFAULT_CONFIG = "configs/complex_fusion_4stream.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--resume", action="store_true", help="continue the training in the run folder")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    folder = Path(config.output.root) / (config.output.name or "phase_gan")
    with RunWriter.for_training(folder) as writer, writer.log():
        run = PhaseGanRun(config, folder)
        print(f"phase GAN ({config.phase_gan.size}) on {len(run.wavs)} train videos: {config.phase_gan.epochs} "
              f"epochs -> {folder}")
        result = run.fit(resume=args.resume)
        writer.write_config(config)
        print(f"generator: {result['generator']} (complex.generator reads it)")


if __name__ == "__main__":
    cli.run(main)
