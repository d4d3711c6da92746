"""Mutation check: plausible bugs planted one at a time in a copy of the toolkit, each with the
tests that must catch it. A mutant the tests let through is a hole in them. Run on demand and
before a release, not in CI (each mutant runs its tests; all of them take several minutes on
2 cores):

    python tools/mutants.py                       # every mutant
    python tools/mutants.py selection-last-epoch threshold-exclusive
    python tools/mutants.py --list

First the chosen mutants' tests run on the unchanged code (they must pass, or a failure would
prove nothing). Then each mutant is printed as caught or missed (or stale: its original text is no
longer in the code, so the entry must be updated), then the counts; exit status 1 when one was
missed or is stale. Every new feature adds its own entries to MUTANTS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str  # must occur exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # pytest node ids: at least one must fail


T_TRAIN = "tests/test_train.py"
T_LOCALIZE = "tests/test_localize.py"
T_REAL = "tests/test_localize_real_world.py"
T_SEGMENTS = "tests/data/test_video_segments.py"
T_CUERATOR = "tests/models/test_cuerator.py"
T_CUERATOR_RUNS = "tests/test_cuerator_runs.py"
T_LANGUAGEBIND = "tests/models/test_languagebind.py"
T_FILES = "tests/data/test_real_files.py"
T_LOCALIZE_FILES = "tests/test_localize_files.py"

MUTANTS = (
    # model selection
    Mutant("selection-last-epoch", "pipeline/training.py",
           'if best is None or chosen["average"] > best["average"]:', "if True:",
           (f"{T_TRAIN}::test_selection_keeps_the_first_epoch_with_the_best_average",)),
    Mutant("selection-on-accuracy", "pipeline/training.py",
           'if best is None or chosen["average"] > best["average"]:',
           'if best is None or chosen["accuracy"] > best["accuracy"]:',
           (f"{T_TRAIN}::test_selection_keeps_the_first_epoch_with_the_best_average",)),
    Mutant("selection-later-wins-ties", "pipeline/training.py",
           'if best is None or chosen["average"] > best["average"]:',
           'if best is None or chosen["average"] >= best["average"]:',
           (f"{T_TRAIN}::test_selection_keeps_the_first_epoch_with_the_best_average",)),
    Mutant("per-subset-selection-last-tie", "pipeline/training.py",
           'best = max(scored, key=lambda record: record["by_subset"][subset]["average"])',
           'best = max(reversed(scored), key=lambda record: record["by_subset"][subset]["average"])',
           (f"{T_TRAIN}::test_the_published_protocol_takes_each_row_at_its_own_best_epoch",)),
    # audio draws
    Mutant("draws-without-rescaling", "data/audio_draws.py",
           "masks = (uniform < keep[:, None]).float() / keep[:, None]", "masks = (uniform < keep[:, None]).float()",
           ("tests/models/test_imagebind.py::test_cached_draw_masks_are_bernoulli_keep_over_keep",)),
    Mutant("given-masks-rescaled-again", "models/imagebind.py", "return branch * mask[..., None]",
           "return branch * mask[..., None] * (1 - self.drop_path)",
           ("tests/models/test_imagebind.py::test_given_masks_equal_the_models_own_train_mode_draws",)),
    # cache provenance
    Mutant("provenance-ignores-preprocessing", "data/feature_cache.py",
           'COMPARED_KEYS = ("format_version", "encoder", "models", "preprocessing", "dtype")',
           'COMPARED_KEYS = ("format_version", "encoder", "models", "dtype")',
           ("tests/pipeline/test_extraction.py::test_a_cache_made_with_other_preprocessing_is_refused",)),
    # evaluation
    Mutant("evaluation-drops-the-last-block", "models/similarity.py",
           "for start in range(0, len(rows), block_videos):", "for start in range(0, len(rows) - 1, block_videos):",
           ("tests/test_eval_zero_shot.py::test_golden_similarities_through_the_cache",
            "tests/test_eval_zero_shot.py::test_end_to_end_on_synthetic_media")),
    Mutant("evaluation-ignores-the-strategy", "pipeline/evaluate.py",
           'chosen = strategies.strategy(config.eval.strategy, "eval.strategy")',
           'chosen = strategies.strategy("v01", "eval.strategy")',
           ("tests/test_eval_zero_shot.py::test_golden_similarities_through_the_cache",)),
    # metrics and decoders (guarded well; kept as a check of the check)
    Mutant("iou-strictly-above-half", "metrics.py", "matches = (inter >= IOU_THRESHOLD * union)",
           "matches = (inter > IOU_THRESHOLD * union)", ("tests/test_metrics.py",)),
    Mutant("v0-sees-other", "models/decoders.py", "columns = k if use_other else background", "columns = k",
           ("tests/models/test_decoders.py",)),
    # the localizer
    Mutant("threshold-exclusive", "pipeline/localize.py", "if score >= threshold:", "if score > threshold:",
           (f"{T_LOCALIZE}::test_an_event_scoring_exactly_the_threshold_is_kept_and_runs_break_at_gaps",)),
    Mutant("confidence-temperature-30", "pipeline/localize.py", "LOGIT_SCALE = 100.0", "LOGIT_SCALE = 30.0",
           (f"{T_LOCALIZE}::test_confidences_are_the_softmax_of_100_cosines_and_the_threshold_filters",)),
    Mutant("store-keyed-by-path", "pipeline/localize.py", "self._keys[seen] = file_sha256(path)",
           'self._keys[seen] = __import__("hashlib").sha256(str(path.resolve()).encode()).hexdigest()',
           (f"{T_LOCALIZE}::test_a_file_rewritten_in_place_is_encoded_again",)),
    Mutant("cli-ignores-strategy", "localize.py", "Localizer(config, args.checkpoint, args.strategy, args.threshold",
           "Localizer(config, args.checkpoint, None, args.threshold",
           (f"{T_LOCALIZE}::test_strategy_on_the_command_line_chooses_the_rule",)),
    Mutant("cli-ignores-threshold", "localize.py", "args.strategy, args.threshold, process",
           "args.strategy, 0.0, process",
           (f"{T_LOCALIZE}::test_confidences_are_the_softmax_of_100_cosines_and_the_threshold_filters",)),
    Mutant("no-evidence-takes-the-first-name", "models/strategies/fine_tuning.py", '"no_evidence": "background"',
           '"no_evidence": "first"', (f"{T_REAL}::test_with_a_checkpoint_a_second_without_evidence_is_other",)),
    Mutant("rotation-ignored", "data/video_segments.py",
           "return image if transpose is None else image.transpose(transpose)", "return image",
           (f"{T_SEGMENTS}::test_frames_are_turned_as_the_display_matrix_says",
            f"{T_REAL}::test_a_phone_clip_reaches_the_encoder_upright")),
    Mutant("sound-read-from-its-first-sample", "data/video_segments.py",
           "first = int(round((low - self.start) * SAMPLE_RATE))", "first = int(round(low * SAMPLE_RATE))",
           (f"{T_SEGMENTS}::test_a_late_sound_is_paired_with_its_own_seconds",)),
    Mutant("clock-from-zero", "data/video_segments.py", "self.zero = min(starts) if starts else 0.0",
           "self.zero = 0.0", (f"{T_SEGMENTS}::test_streams_that_both_start_late_lose_nothing",)),
    Mutant("side-data-iterated-as-items", "data/video_segments.py",
           "item = frame.side_data.get(SideDataType.DISPLAYMATRIX)",
           "item = next((i for i in frame.side_data if i.type == SideDataType.DISPLAYMATRIX), None)",
           (f"{T_FILES}::test_frames_with_side_data_are_read",)),
    Mutant("sound-after-a-gap-appended", "data/video_segments.py",
           "if abs(time - self.expected) > AUDIO_JITTER:", "if False:",
           (f"{T_FILES}::test_sound_after_a_dropout_keeps_its_own_time",)),
    Mutant("first-audio-track-always", "data/video_segments.py",
           "return next((t for t in tracks if t.disposition & Disposition.default), tracks[0])", "return tracks[0]",
           (f"{T_FILES}::test_the_default_audio_track_is_read_unless_another_is_named",)),
    Mutant("clock-restart-ignored", "data/video_segments.py",
           "return time < previous - RESTART_BACK or", "return False and",
           (f"{T_FILES}::test_recordings_joined_into_one_file_play_on",)),
    Mutant("stored-pixel-size", "data/video_segments.py",
           "width, height = display_size(frame.width, frame.height, self.pixel_aspect)",
           "width, height = frame.width, frame.height",
           (f"{T_FILES}::test_non_square_pixels_are_shown_at_the_display_aspect",)),
    Mutant("silent-worker-never-named", "pipeline/localize.py",
           "silent = [keys[video] for video in dataset.silent(timeout)]", "raise",
           (f"{T_LOCALIZE_FILES}::test_a_worker_that_stops_answering_is_named_and_the_others_go_on",)),
    Mutant("users-folder-written-into", "pipeline/outputs.py",
           "if not folder.is_dir() or (folder / LOCK_FILE).exists():", "if True:",
           (f"{T_LOCALIZE_FILES}::test_the_users_own_folder_is_never_written_into",
            "tests/test_run_ownership.py::test_a_folder_of_the_users_own_files_is_never_written_into")),
    Mutant("threshold-on-the-unrounded-score", "pipeline/localize.py",
           "score = round(float(np.mean(confidence[first:t])), SCORE_DIGITS)",
           "score = float(np.mean(confidence[first:t]))",
           (f"{T_LOCALIZE_FILES}::test_an_event_shown_as_1_passes_a_threshold_of_1",)),
    Mutant("cut-files-reported-ok", "data/video_windows.py",
           "if declared is not None and seconds.end < declared - PARTIAL_GAP:", "if False:",
           (f"{T_REAL}::test_a_cut_file_is_partial_its_seconds_localized_and_the_exit_status_1",)),
    Mutant("a-path-given-twice-is-two-inputs", "pipeline/localize.py", "if candidate.resolve() not in seen:",
           "if True:", (f"{T_REAL}::test_twins_are_encoded_once_and_a_path_given_twice_is_one_input",)),
    Mutant("case-duplicates-allowed", "pipeline/localize.py",
           'return " ".join(name.split()).casefold()', "return name",
           (f"{T_REAL}::test_class_files_and_class_lists_as_people_write_them",)),
    Mutant("localize-lists-the-folders-again", "localize.py", "mine = localizer.localize_videos(videos, names)",
           "mine = localizer.localize(args.videos, names)",
           (f"{T_REAL}::test_a_video_gone_after_it_was_listed_is_reported_and_the_others_are_localized",)),
    # CueRator
    Mutant("cuerator-pass-at-the-threshold", "models/cuerator.py",
           "a_pass, v_pass = a > _tensor(audio_thresholds), v > _tensor(visual_thresholds)",
           "a_pass, v_pass = a >= _tensor(audio_thresholds), v >= _tensor(visual_thresholds)",
           ("tests/models/test_cuerator.py::test_thresholds_and_decisions_equal_the_published_rule",
            "tests/models/test_cuerator.py::test_a_class_passes_only_strictly_above_its_threshold")),
    Mutant("cuerator-blocks-reuse-the-first-parameters", "models/cuerator.py",
           "combine(cues(a[b], v[b]), p[b])", "combine(cues(a[b], v[b]), p[:len(a[b])])",
           (f"{T_CUERATOR}::test_a_split_larger_than_one_block_is_decided_as_each_video_alone",)),
    Mutant("cuerator-baseline-includes-itself", "models/cuerator.py",
           "baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1) if k > 1",
           "baseline = rewards.sum(dim=1, keepdim=True) / k if k > 1",
           ("tests/models/test_cuerator.py::test_the_reinforce_loss_and_its_gradient",)),
    Mutant("cuerator-rule-keeps-other", "models/strategies/cuerator.py",
           "labels = cuerator.decide(sim_a[..., :-1], sim_v[..., :-1], params)",
           "labels = cuerator.decide(sim_a, sim_v, params)",
           (f"{T_CUERATOR}::test_their_policy_checkpoint_decodes_as_their_inference_does",)),
    Mutant("cuerator-policy-reads-swapped-modalities", "models/strategies/cuerator.py",
           "policy(vision.float(), audio.float())", "policy(audio.float(), vision.float())",
           (f"{T_CUERATOR}::test_their_policy_checkpoint_decodes_as_their_inference_does",)),
    Mutant("cuerator-oracle-last-best", "models/cuerator.py", "best = int(np.argmax(accuracies))",
           "best = len(accuracies) - 1 - int(np.argmax(accuracies[::-1]))",
           (f"{T_CUERATOR}::test_the_global_oracle_picks_what_the_published_oracle_picks",
            f"{T_CUERATOR}::test_the_oracle_keeps_the_first_of_equally_good_candidates")),
    Mutant("cuerator-resume-forgets-the-rng", "pipeline/cuerator_training.py",
           'restore_rng(state["toolkit"], self.device)', "pass",
           (f"{T_CUERATOR_RUNS}::test_resume_continues_the_policy_training_exactly",)),
    Mutant("cuerator-import-trusts-the-order", "pipeline/cuerator_files.py",
           'if not np.array_equal(np.asarray(sims["avc_labels"]) > 0, videos.labels.astype(bool)):', "if False:",
           (f"{T_CUERATOR_RUNS}::test_imports_are_checked_against_the_annotations",)),
    # the published fine-tuning options
    Mutant("power-norm-over-features", "models/temporal.py", "attended = F.normalize(attended, dim=1)",
           "attended = F.normalize(attended, dim=-1)",
           ("tests/models/test_published_options.py::test_each_published_option_gives_the_published_numbers",)),
    Mutant("distance-prior-unsquared", "models/temporal.py", "self.distance_gamma * distance ** 2",
           "self.distance_gamma * distance",
           ("tests/models/test_published_options.py::test_each_published_option_gives_the_published_numbers",)),
    Mutant("local-window-centred-late", "models/temporal.py",
           "(rows - window // 2 + torch.arange(window, device=device))",
           "(rows - (window - 1) // 2 + torch.arange(window, device=device))",
           ("tests/models/test_published_options.py::test_each_published_option_gives_the_published_numbers",
            "tests/models/test_published_options.py::test_the_local_window_is_the_published_mask_clamped_at_the_edges")),
    Mutant("scheduler-never-steps", "pipeline/training.py",
           "scheduler.step()  # after the epoch, as published", "pass  # after the epoch, as published",
           (f"{T_TRAIN}::test_the_learning_rate_halves_at_the_milestones_and_resumes_exactly",)),
    Mutant("f1-batch-ignored", "pipeline/evaluate.py", "scores.summary(masks[s], f1_batch)", "scores.summary(masks[s])",
           (f"{T_TRAIN}::test_the_published_options_train_and_are_recorded_in_the_checkpoint",)),
    Mutant("test-strategy-ignored", "pipeline/trainable.py", 'if strategy == "v1":', "if True:",
           (f"{T_TRAIN}::test_the_published_options_train_and_are_recorded_in_the_checkpoint",)),
    # LanguageBind
    Mutant("languagebind-resize-without-antialias", "models/languagebind.py",
           "interpolation=TF.InterpolationMode.BICUBIC, antialias=True)",
           "interpolation=TF.InterpolationMode.BICUBIC, antialias=False)",
           (f"{T_LANGUAGEBIND}::test_the_image_transform_is_the_references",)),
    Mutant("languagebind-std-not-doubled", "models/languagebind.py", "(channels - AUDIO_MEAN) / (2 * AUDIO_STD)",
           "(channels - AUDIO_MEAN) / AUDIO_STD", (f"{T_LANGUAGEBIND}::test_the_audio_transform_is_the_references",)),
    Mutant("languagebind-short-clips-zero-padded", "models/languagebind.py",
           "tiled = mel.repeat(math.ceil(FRAMES / len(mel)), 1)[:FRAMES]",
           "tiled = torch.nn.functional.pad(mel, (0, 0, 0, FRAMES - len(mel)))",
           (f"{T_LANGUAGEBIND}::test_the_audio_transform_is_the_references",)),
    Mutant("languagebind-lora-accepted", "models/families/languagebind.py",
           'if (config.get("vision_config") or {}).get("lora_r", 0):', "if False:",
           (f"{T_LANGUAGEBIND}::test_bad_folders_are_one_line_naming_the_folder",)),
    # ablation sweeps
    Mutant("sweep-trusts-any-results", "pipeline/sweep.py", "        if not changes:\n            return \"done\"",
           "        if True:\n            return \"done\"",
           ("tests/test_sweep.py::test_results_of_another_config_stop_the_sweep_before_anything_runs",)),
    Mutant("sweep-never-resumes", "pipeline/sweep.py",
           'return "resume" if resumable else "new"', 'return "new"',
           ("tests/test_sweep.py::test_an_interrupted_training_resumes_and_more_epochs_continue_the_run",)),
    # documented defaults
    Mutant("published-lr-changed", "configs/v1_fine_tuning.yaml", "lr: 5.0e-5", "lr: 1.0e-4",
           ("tests/test_readme_defaults.py",)),
    Mutant("app-upload-limit-changed", "configs/app.yaml", "max_upload_mb: 500", "max_upload_mb: 50",
           ("tests/test_readme_defaults.py",)),
    # the web app
    Mutant("upload-limit-off-by-one", "webapp/explorer.py", "if size > self.max_upload_mb * MB:",
           "if size >= self.max_upload_mb * MB:", ("tests/test_app.py::test_an_upload_of_exactly_the_limit_is_accepted",)),
    Mutant("picking-ignores-the-suffix", "webapp/explorer.py",
           "if not inside or Path(name).suffix.lower() not in VIDEO_SUFFIXES:", "if not inside:",
           ("tests/test_app.py::test_only_video_suffixes_are_offered_and_picked",)),
)


def toolkit_files() -> list[str]:
    """The files a fresh clone would have (tracked, plus new ones git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]


def run_mutant(mutant: Mutant, copy: Path, env: dict) -> tuple[str, float]:
    """caught / missed / stale / error, and the seconds its tests took."""
    path = copy / mutant.file
    text = path.read_text()
    if text.count(mutant.original) != 1:
        return "stale", 0.0
    path.write_text(text.replace(mutant.original, mutant.mutated))
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
                                 *mutant.tests], cwd=copy, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        path.write_text(text)
    outcome = {0: "missed", 1: "caught"}.get(result.returncode, "error")
    return outcome, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - {m.name for m in MUTANTS})
    if unknown:
        parser.error(f"unknown mutant(s) {', '.join(unknown)}; --list shows them")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:38s} {mutant.file}: {' '.join(mutant.tests)}")
        return
    shared = Path(os.environ.get("OVAVEL_SHARED", REPO.parent / "shared")).resolve()
    env = {**os.environ, "OVAVEL_SHARED": str(shared)}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="mutants_") as folder:
        copy = Path(folder) / "toolkit"
        for name in toolkit_files():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
        tests = sorted({test for mutant in chosen for test in mutant.tests})
        baseline = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=copy,
                                  env=env, capture_output=True, text=True, timeout=3600)
        if baseline.returncode != 0:  # a failure then would not be the mutant's doing
            sys.exit(f"the mutants' tests fail on the unchanged code:\n{baseline.stdout[-3000:]}")
        for mutant in chosen:
            outcome, seconds = run_mutant(mutant, copy, env)
            counts[outcome] = counts.get(outcome, 0) + 1
            print(f"{outcome:7s} {mutant.name:38s} ({seconds:5.1f} s)", flush=True)
    print(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) + f" of {len(chosen)} mutants")
    if counts.get("missed") or counts.get("stale") or counts.get("error"):
        sys.exit(1)


if __name__ == "__main__":
    main()
