"""Download the CLIP + CLAP family's weights with the libraries' own downloaders and save them
where the configs look. Nothing else in the toolkit downloads; this runs only when you call it.

    python tools/download_clip_clap.py      # .checkpoints/clip_vit_b32_openai.bin, .checkpoints/clap-htsat-unfused/

CLIP: open_clip's ViT-B-32 with OpenAI's weights (QuickGELU), saved as a state dict. CLAP: the
Hugging Face model laion/clap-htsat-unfused (the unfused HTSAT model) with its tokenizer and
feature extractor, saved as a folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIP_MODEL, CLIP_TAG = "ViT-B-32-quickgelu", "openai"
CLAP_REPO = "laion/clap-htsat-unfused"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip-output", default=".checkpoints/clip_vit_b32_openai.bin")
    parser.add_argument("--clap-output", default=".checkpoints/clap-htsat-unfused")
    args = parser.parse_args(argv)
    clip_output, clap_output = Path(args.clip_output), Path(args.clap_output)
    if clip_output.exists():
        print(f"{clip_output} already exists; delete it first to download again")
    else:
        import open_clip
        import torch

        print(f"downloading open_clip {CLIP_MODEL} ({CLIP_TAG}) -> {clip_output}")
        model = open_clip.create_model(CLIP_MODEL, pretrained=CLIP_TAG)
        clip_output.parent.mkdir(parents=True, exist_ok=True)
        tmp = clip_output.with_name(clip_output.name + ".partial")
        torch.save(model.state_dict(), tmp)
        tmp.replace(clip_output)
    if clap_output.exists():
        print(f"{clap_output} already exists; delete it first to download again")
    else:
        from transformers import ClapModel, ClapProcessor

        print(f"downloading {CLAP_REPO} -> {clap_output}")
        tmp = clap_output.with_name(clap_output.name + ".partial")
        ClapModel.from_pretrained(CLAP_REPO).save_pretrained(tmp)
        ClapProcessor.from_pretrained(CLAP_REPO).save_pretrained(tmp)
        tmp.replace(clap_output)


if __name__ == "__main__":
    main()
