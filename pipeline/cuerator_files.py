"""Features both ways between a feature cache and CueRator's own file layout, so either code can
use what the other extracted:

    data/embeddings/<encoder>/{split}.npz            audio, visual [N, 10, D]; vid_names [N]
    data/embeddings/<encoder>/{train,test}_text.npy  [C + 1, D]: the classes, then ``other``
        (or {train,test}_audio_text.npy and _visual_text.npy when the two spaces differ)
    data/similarities/<encoder>/{split}_sim.npz      a_t_sim, v_t_sim [N, 10, C] (cosines, no
        ``other``), category_ids [N], avc_labels [N, 10]; class_names [C], vid_names [N]

Rows follow the meta CSV's order of each split (as CueRator's loaders read them); ``train`` is
scored over the seen classes, ``val`` and ``test`` over all. ``class_names`` and ``vid_names``
are this toolkit's additions (CueRator's loaders ignore them); importing files without them
needs the class order from CueRator's category CSVs.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.files import atomic_write, atomic_write_json, writing
from common.schema import Config
from data.annotations import OTHER, AnnotationIndex
from data.feature_cache import MODALITIES, WORK_DIR, CacheError, FeatureCache
from models.families import family
from models.similarity import segment_similarities
from pipeline.evaluate import cached_videos, class_texts
from pipeline.extraction import cache_lock, ensure_features, wanted_provenance

SPLITS = ("train", "val", "test")
TEXT_KEYS = {"train": "train", "val": "test", "test": "test"}  # which text file each split reads
MESSAGES = {"what": "the exported files", "way_out": "give --output another folder"}


def folders(root: Path, encoder: str) -> tuple[Path, Path]:
    return Path(root) / "data" / "embeddings" / encoder, Path(root) / "data" / "similarities" / encoder


def _save_npz(path: Path, **arrays) -> None:
    with writing(path, **MESSAGES):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays), **MESSAGES)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with writing(path, **MESSAGES):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: np.save(handle, array), **MESSAGES)


def export(config: Config, root, encoder: str, splits=SPLITS) -> list[Path]:
    """Write the cache's ``splits`` (extracted first when missing and possible) in CueRator's
    layout under ``root``; the files written."""
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    index.require_splits({split: "the export" for split in splits})
    cache = ensure_features(config, list(splits), index)
    embeddings, similarities = folders(root, encoder)
    written = []
    for split in splits:
        vocabulary = index.seen_vocabulary if split == "train" else index.all_vocabulary
        features, rows, kept, excluded = cached_videos(cache, index.videos(split, vocabulary=vocabulary))
        if len(excluded):
            raise UserError(f"the {split} split of the cache at {cache.root} leaves out {len(excluded)} videos "
                            f"(unreadable media, see {split}/excluded.csv); CueRator's files hold every video of the "
                            "split in the meta CSV's order: extract them, or drop them from the meta CSV")
        audio, vision = features.gather(rows)
        texts = class_texts(cache, config, vocabulary.names, torch.device("cpu"))
        sim_a, sim_v = segment_similarities(features, rows, *texts, config.eval.block_videos)
        vid_names = np.asarray(kept.vid_names, dtype=str)
        _save_npz(embeddings / f"{split}.npz", audio=audio, visual=vision, vid_names=vid_names)
        _save_npz(similarities / f"{split}_sim.npz", a_t_sim=sim_a[..., :-1], v_t_sim=sim_v[..., :-1],
                  category_ids=kept.class_index.astype(np.int64), avc_labels=kept.labels.astype(np.float32),
                  class_names=np.asarray(vocabulary.names[:-1], dtype=str), vid_names=vid_names)
        written += [embeddings / f"{split}.npz", similarities / f"{split}_sim.npz"]
        key = TEXT_KEYS[split]
        audio_text, vision_text = (text.numpy() for text in texts)
        if audio_text.shape == vision_text.shape and np.array_equal(audio_text, vision_text):
            _save_npy(embeddings / f"{key}_text.npy", audio_text)
            written.append(embeddings / f"{key}_text.npy")
        else:
            for name, text in (("audio", audio_text), ("visual", vision_text)):
                _save_npy(embeddings / f"{key}_{name}_text.npy", text)
                written.append(embeddings / f"{key}_{name}_text.npy")
    return list(dict.fromkeys(written))


def read_categories(path) -> list[str]:
    """A CueRator category CSV (one name per row, no header), ``other`` left out."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"category file not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        return [row[0] for row in csv.reader(handle) if row and row[0].lower() != OTHER]


def _load(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} not found: CueRator's layout has data/embeddings/<encoder>/<split>.npz and "
                        "data/similarities/<encoder>/<split>_sim.npz under the folder given")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable .npz file ({err})") from None


def _require(data: dict, path: Path, *keys) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)} (it holds {', '.join(sorted(data)) or 'nothing'})")


def _class_names(sims: dict, sim_path: Path, categories, split: str, expected: list[str]) -> list[str]:
    """The classes of a split's text rows: the file's own names, else the category CSV's; they must
    be the annotations' classes of that split."""
    if "class_names" in sims:
        names = [str(name) for name in sims["class_names"]]
    elif categories is not None:
        names = read_categories(categories)
    else:
        raise UserError(f"{sim_path} does not name its classes: give CueRator's category CSV of the {split} "
                        f"classes (--{TEXT_KEYS[split]}-categories)")
    if sorted(names) != sorted(expected):
        raise UserError(f"the {split} classes of {sim_path} ({len(names)}) are not the annotations' "
                        f"{len(expected)} {split} classes; use the meta CSV these files were made from")
    return names


def import_files(config: Config, root, encoder: str, categories: dict | None = None) -> FeatureCache:
    """A new feature cache at ``cache.dir`` from CueRator's layout under ``root`` (every split
    present there), checked against the annotations: row order, labels, widths, class names."""
    categories = categories or {}
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    cache = FeatureCache(config.cache.dir)
    if cache.exists():
        raise CacheError(f"cache.dir {cache.root} already holds a feature cache; import into a new folder")
    embeddings, similarities = folders(root, encoder)
    splits = [split for split in SPLITS if (embeddings / f"{split}.npz").is_file()]
    if not splits:
        raise UserError(f"{embeddings} holds no train.npz, val.npz or test.npz: is {encoder!r} the encoder's "
                        "folder name there?")
    widths = family(config.encoder.family).widths(config)
    lock = cache_lock(cache)
    try:
        texts: dict[str, dict[str, np.ndarray]] = {modality: {} for modality in MODALITIES}
        for split in splits:
            vocabulary = index.seen_vocabulary if split == "train" else index.all_vocabulary
            videos = index.videos(split, vocabulary=vocabulary)
            emb_path, sim_path = embeddings / f"{split}.npz", similarities / f"{split}_sim.npz"
            emb, sims = _load(emb_path), _load(sim_path)
            _require(emb, emb_path, "audio", "visual")
            _require(sims, sim_path, "avc_labels")
            arrays = {"audio": emb["audio"], "vision": emb["visual"]}
            for modality, array in arrays.items():
                if array.ndim != 3 or array.shape[:2] != (len(videos), videos.labels.shape[1]) \
                        or array.shape[2] != widths[modality]:
                    raise UserError(f"{emb_path}: {modality} has shape {array.shape}; the annotations' {split} split "
                                    f"and {family(config.encoder.family).describe(config)} need "
                                    f"({len(videos)}, {videos.labels.shape[1]}, {widths[modality]})")
            if "vid_names" in emb and [str(v) for v in emb["vid_names"]] != list(videos.vid_names):
                raise UserError(f"{emb_path}: its vid_names are not the {split} videos of {config.data.meta_csv} in "
                                "that file's order")
            if not np.array_equal(np.asarray(sims["avc_labels"]) > 0, videos.labels.astype(bool)):
                raise UserError(f"{sim_path}: avc_labels differ from {config.data.label_json}'s labels of the {split} "
                                "videos in the meta CSV's order; the files were made from other annotations")
            names = _class_names(sims, sim_path, categories.get(TEXT_KEYS[split]), split,
                                 list(vocabulary.names[:-1])) + [OTHER]
            for modality, rows in _text_rows(embeddings, TEXT_KEYS[split], len(names), widths).items():
                texts[modality].update(zip(names, rows))
            _write_split(cache, split, videos.vid_names, arrays, config.cache.dtype)
        for modality in MODALITIES:
            names = sorted(texts[modality])
            cache.write_text(names, np.stack([texts[modality][n] for n in names]), config.encoder.template(modality),
                             modality, config.cache.dtype)
        atomic_write_json(cache.provenance_path, {
            **wanted_provenance(config), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "imported_from": {"layout": "cuerator", "folder": str(Path(root)), "encoder": encoder,
                              "splits": splits}})
    finally:
        lock.release()
    return cache


def _text_rows(embeddings: Path, key: str, count: int, widths: dict) -> dict[str, np.ndarray]:
    """``{modality: [count, D]}`` from ``{key}_text.npy`` or its per-modality pair."""
    shared = embeddings / f"{key}_text.npy"
    pair = {"audio": embeddings / f"{key}_audio_text.npy", "vision": embeddings / f"{key}_visual_text.npy"}
    paths = pair if all(p.is_file() for p in pair.values()) else {"audio": shared, "vision": shared}
    rows = {}
    for modality, path in paths.items():
        if not path.is_file():
            raise UserError(f"{path} not found: the {key} class texts are {shared.name}, or "
                            f"{pair['audio'].name} with {pair['vision'].name}")
        array = np.load(path, allow_pickle=False)
        if array.shape != (count, widths[modality]):
            raise UserError(f"{path} has shape {array.shape}; expected ({count}, {widths[modality]}): the classes, "
                            "then other")
        rows[modality] = array.astype(np.float32)
    return rows


def _write_split(cache: FeatureCache, split: str, vid_names, arrays: dict, dtype: str) -> None:
    """The split's folder, written aside and renamed into place (it appears complete)."""
    work = cache.root / WORK_DIR / f"import_{split}"
    with writing(cache.root, "the imported cache", "point cache.dir at a folder on another disk"):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for modality, array in arrays.items():
            np.save(work / f"{modality}.npy", np.asarray(array).astype(dtype))
        (work / "videos.csv").write_text("vid_name\n" + "".join(f"{name}\n" for name in vid_names))
        os.replace(work, cache.split_dir(split))
