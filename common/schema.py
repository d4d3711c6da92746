"""The config schema: every key a YAML file may set, its type and its default."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataConfig:
    """Where the annotations and media are; relative paths are taken from the working directory."""

    meta_csv: str = "ovave_dataset_preprocessed/ovave_dataset_meta.csv"
    label_json: str = "ovave_dataset_preprocessed/released_ovavel_dataset_anno.json"
    media_root: str = "ovave_dataset_preprocessed"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
