"""What the web page asks of the localizer, with no web framework in it: which videos may be
picked, whether an upload is acceptable, and one query (a video, words, a decoding) answered
through ``pipeline.localize.Localizer``, timed, with what had to be encoded for it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from data.annotations import OTHER, AnnotationIndex
from data.raw_videos import VIDEO_SUFFIXES
from models import strategies
from models.strategies import Decoder
from pipeline.localize import Localizer, UsageError, VideoResult, find_videos, parse_class_text

MB = 10 ** 6


@dataclass
class Answer:
    """One query's outcome: the localizer's result and what the query cost."""

    video: Path
    names: list[str]  # the query's class names, ``other`` last
    method: str
    result: VideoResult
    new_names: list[str]  # names whose text embeddings this query encoded
    seconds: float  # from the question to the answer, waiting for another query included
    waited: float = 0.0  # of which waiting for another query

    @property
    def ok(self) -> bool:
        """Localized (a ``partial`` file too: its decodable seconds)."""
        return self.result.localized

    def occurring(self) -> list[str]:
        """Classes labelled at some second, in order of first appearance."""
        return list(dict.fromkeys(label for label in self.result.labels if label != OTHER))


class Explorer:
    """Answers the page's queries; one at a time, since they share one encoder and one cache."""

    def __init__(self, localizer: Localizer, videos=None, checkpoints=(), max_upload_mb: float = 500,
                 benchmark_files: tuple | None = None):
        self.localizer = localizer
        self.videos = Path(videos).resolve() if videos is not None else None
        self.videos_given = videos  # as the user wrote it, for the page
        if self.videos is not None and not self.videos.is_dir():
            raise UsageError(f"--videos {videos}: no such folder")
        rules = sorted((name for name in strategies.names("similarities")
                        if strategies.registry()[name].offered(localizer.config)),
                       key=lambda name: name != strategies.DEFAULT)  # the default first; those the config can give
        self.decodings: dict[str, Decoder] = {}
        for rule in rules:
            decoder = localizer.decoding(rule)
            self.decodings[decoder.name] = decoder
        for checkpoint in checkpoints:
            self.decodings[f"checkpoint {checkpoint}"] = localizer.decoding(checkpoint=checkpoint)
        self.max_upload_mb = max_upload_mb
        self.benchmark_files = benchmark_files
        self._busy = threading.Lock()

    def choices(self) -> list[str]:
        """The videos of the --videos folder, as paths relative to it (links leading out left out)."""
        if self.videos is None:
            return []
        try:
            found = find_videos([self.videos])
        except UsageError:  # no video in it (yet)
            return []
        return [path.relative_to(self.videos).as_posix() for path in found if path.resolve().is_relative_to(self.videos)]

    def chosen(self, name: str) -> Path:
        """The picked video, which must be a video file inside the --videos folder (a link leading
        out of it is refused too)."""
        if self.videos is None:
            raise UsageError("no --videos folder was given to the app; upload a video instead")
        path = (self.videos / name).resolve()
        inside = path.is_relative_to(self.videos) and path.is_file()
        if not inside or Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise UsageError(f"{name!r} is not a video of the --videos folder {self.videos}")
        return path

    def uploaded(self, path) -> Path:
        path = Path(path)
        size = path.stat().st_size
        if size > self.max_upload_mb * MB:
            raise UsageError(f"the upload {path.name} is {size / MB:.1f} MB; the limit is app.max_upload_mb = "
                             f"{self.max_upload_mb:g} (raise it in the config, or put the video in the --videos "
                             "folder)")
        return path

    def benchmark_names(self) -> list[str]:
        """The benchmark's class names, from the config's annotation files."""
        if self.benchmark_files is None:
            raise UsageError("no benchmark annotation files are configured (data.meta_csv, data.label_json)")
        return list(AnnotationIndex.load(*self.benchmark_files).all_vocabulary.names[:-1])

    def ask(self, video: Path, words: str, method: str) -> Answer:
        if method not in self.decodings:
            raise UsageError(f"unknown decoding {method!r}; choose one of {', '.join(self.decodings)}")
        names = parse_class_text(words)
        asked = time.perf_counter()
        with self._busy:
            waited = time.perf_counter() - asked
            [result] = self.localizer.localize([video], names, self.decodings[method])
            seconds = time.perf_counter() - asked
        return Answer(Path(video), names + [OTHER], self.decodings[method].name, result,
                      list(self.localizer.encoded_names), seconds, waited)
