"""Download the LanguageBind family's two folders from the Hugging Face Hub and save them where
the configs look. Nothing else in the toolkit downloads; this runs only when you call it.

    python tools/download_languagebind.py   # .checkpoints/LanguageBind_Image/, .checkpoints/LanguageBind_Audio_FT/

LanguageBind/LanguageBind_Image (the frames) and LanguageBind/LanguageBind_Audio_FT (the fully
fine-tuned audio tower; not LanguageBind_Audio, whose LoRA weights this family refuses), each a
folder with config.json and the weights. About 2 x 1.2 GB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPOS = {"LanguageBind/LanguageBind_Image": "image_output", "LanguageBind/LanguageBind_Audio_FT": "audio_output"}
FILES = ["config.json", "*.safetensors", "pytorch_model.bin"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-output", default=".checkpoints/LanguageBind_Image")
    parser.add_argument("--audio-output", default=".checkpoints/LanguageBind_Audio_FT")
    args = parser.parse_args(argv)
    from huggingface_hub import snapshot_download

    for repo, key in REPOS.items():
        output = Path(getattr(args, key))
        if output.exists():
            print(f"{output} already exists; delete it first to download again")
            continue
        print(f"downloading {repo} -> {output}")
        partial = output.with_name(output.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        snapshot_download(repo, local_dir=partial, allow_patterns=FILES)
        partial.replace(output)


if __name__ == "__main__":
    main()
