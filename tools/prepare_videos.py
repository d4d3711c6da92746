"""Prepare raw videos (mp4, mkv, webm, ...; any frame rate, resolution) in the OV-AVEBench
layout under data.media_root: 10 PNG frames and a 16 kHz WAV of the first 10 s per video.

    python tools/prepare_videos.py --videos raw_videos/ --workers 8
    python tools/prepare_videos.py --videos raw_videos/ data.media_root=/data/ovave_dataset_preprocessed

Videos are found by name ({vid_name}.{ext}, at any depth under --videos) for every row of the
meta CSV. Re-running skips videos already prepared. A report lists every video's outcome:
ok, done_before, too_short, no_audio, undecodable, not_found, timed_out (a worker that stayed
silent for video.worker_timeout seconds is ended and the others go on).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from concurrent.futures import TimeoutError as WorkerTimeout
from pathlib import Path

from pebble import ProcessPool
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.processes import die_with_parent  # noqa: E402
from data.annotations import SPLITS, AnnotationIndex  # noqa: E402
from data.loading import media_paths  # noqa: E402
from data.raw_videos import Outcome, find_videos, prepare_video  # noqa: E402
from data.video_windows import worker_context  # noqa: E402

DEFAULT_CONFIG = "configs/v0_training_free.yaml"
REPORT_COLUMNS = ("vid_name", "split", "class", "source", "status", "detail")


def _prepare(source, wav, frames, track):
    return prepare_video(source, wav, frames, track)


def prepare_all(jobs: list, workers: int, track, timeout: float, work=_prepare) -> list[Outcome]:
    """Every job's outcome (``work`` does one), decoded by ``workers`` processes; a worker silent
    for ``timeout`` seconds is ended and its video reported ``timed_out``."""
    pool = ProcessPool(max_workers=workers, initializer=die_with_parent, context=worker_context())
    try:
        futures = [pool.schedule(work, args=(*job, track), timeout=timeout) for job in jobs]
        outcomes = []
        for (source, _, frames), future in tqdm(zip(jobs, futures), total=len(jobs), unit="video", desc="prepare"):
            try:
                outcomes.append(future.result())
            except WorkerTimeout:
                outcomes.append(Outcome(frames.name, "timed_out", f"decoding {source} stopped answering for "
                                                                  f"{timeout:g} s (video.worker_timeout); its worker "
                                                                  "was ended"))
        pool.close()
        return outcomes
    finally:
        pool.stop()  # at once on Ctrl-C or an error: the videos not reached are prepared when run again
        pool.join()


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--videos", required=True, help="folder holding the raw video files")
    parser.add_argument("--workers", type=int, default=4, help="decoding processes (they end with this one)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
                        help=f"the meta CSV's splits to prepare (default: {' '.join(SPLITS)})")
    parser.add_argument("--report", help="CSV of outcomes (default: <media_root>/prepare_report.csv)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: at least 1 decoding process is needed")
    if not Path(args.videos).is_dir():
        raise UserError(f"--videos {args.videos} is not a folder")
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    found = find_videos(args.videos)
    rows, jobs, outcomes = [], [], {}
    for split in args.splits:
        videos = index.videos(split)
        for vid, category in zip(videos.vid_names, videos.categories):
            wav, frames = media_paths(config.data.media_root, split, category, vid)
            source = found.get(vid)
            rows.append({"vid_name": vid, "split": split, "class": category, "source": str(source or "")})
            if source is None:
                outcomes[vid] = Outcome(vid, "not_found", f"no {vid}.<mp4|mkv|webm|...> under {args.videos}")
            else:
                jobs.append((source, wav, frames))
    if not rows:
        raise UserError(f"{config.data.meta_csv} has no rows of split {', '.join(args.splits)} (--splits); "
                        f"its splits: {', '.join(sorted(set(index.splits.tolist())))}")
    for outcome in prepare_all(jobs, args.workers, config.video.audio_track, config.video.worker_timeout):
        outcomes[outcome.vid_name] = outcome
    report = Path(args.report or Path(config.data.media_root) / "prepare_report.csv")
    report.parent.mkdir(parents=True, exist_ok=True)
    with open(report, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            outcome = outcomes[row["vid_name"]]
            writer.writerow({**row, "status": outcome.status, "detail": outcome.detail})
    counts = Counter(outcomes[row["vid_name"]].status for row in rows)
    print(", ".join(f"{status}: {n}" for status, n in sorted(counts.items())))
    print(f"report: {report}")


if __name__ == "__main__":
    cli.run(main)
