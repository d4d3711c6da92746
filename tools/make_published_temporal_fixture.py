"""Write tests/fixtures/published_temporal_options.npz: numbers computed by the published temporal
module (jasongief/OV-AVEL, proposed_method/ImageBind-main/layers/temporal_av_attn_layer.py) for
each of its options, so that tests compare ours with it without its code.

    git clone https://github.com/jasongief/OV-AVEL
    python tools/make_published_temporal_fixture.py --published OV-AVEL/proposed_method/ImageBind-main/layers/temporal_av_attn_layer.py

The module is imported from that file as it is (its ``.cuda()`` calls become no-ops on the CPU).
Per case: small random inputs and text, the module's initial state dict (its key names), its
outputs in train mode (dropout 0), the published training loss (cosines of each modality with the
text; geometric fusion min-max normalised, or the mean embedding's cosine), and the outputs and
state after one Adam step. The cross stacks, built but commented out of its forward, run as the
commented code reads them (each modality's cross stack attends to the other's original
embeddings; self and cross outputs summed). Float32, seed 0; two runs give identical files.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
DIM, HIDDEN, FFN, BATCH, SEGMENTS, CLASSES, LR = 32, 16, 24, 3, 10, 6, 1e-3

# name -> (the published module's arguments, how its forward is run)
CASES = {
    "distance_prior": ({"head_num": 2, "use_adj_in_attn": True, "gamma": 0.6, "bias": 0.2}, "self"),
    "local_window_3": ({"use_mask_in_attn": True, "win_size": 3}, "self"),
    "local_window_4": ({"head_num": 2, "use_mask_in_attn": True, "win_size": 4}, "self"),
    "power_norm": ({"norm_flag": True}, "self"),
    "all_three": ({"sa_layer_num": 2, "use_adj_in_attn": True, "use_mask_in_attn": True, "win_size": 5,
                   "norm_flag": True}, "self"),
    "cross_layers": ({"sa_layer_num": 1, "xa_layer_num": 2}, "both"),
    "feature_mean": ({}, "self"),
}


def load_published(path: Path):
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the module moves its masks to CUDA
    spec = importlib.util.spec_from_file_location("published_temporal", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module, audio, vision, how: str):
    if how == "self":
        return module(audio, vision)
    a_self, v_self = module(audio, vision)  # the self stacks, as its forward runs them
    a_cross, v_cross = audio, vision
    for block in module.a_xa_blocks:
        a_cross = block(a_cross, vision, vision)
    for block in module.v_xa_blocks:
        v_cross = block(v_cross, audio, audio)
    return a_self + a_cross, v_self + v_cross


def published_loss(audio, vision, text, labels, fusion: str):
    text = text[None].expand(audio.shape[0], -1, -1)
    if fusion == "feature_mean":
        mean = (audio + vision) * 0.5
        logits = F.cosine_similarity(mean[:, :, None], text[:, None], dim=-1)
    else:
        sim_a = F.cosine_similarity(audio[:, :, None], text[:, None], dim=-1)
        sim_v = F.cosine_similarity(vision[:, :, None], text[:, None], dim=-1)
        logits = torch.sqrt(F.relu(sim_a * sim_v))
        low, high = logits.min(-1, keepdim=True)[0], logits.max(-1, keepdim=True)[0]
        logits = (logits - low) / (high - low + 1e-8)
    return F.cross_entropy(logits.permute(0, 2, 1), labels)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--published", required=True, help="the published temporal_av_attn_layer.py")
    parser.add_argument("--output", default=str(REPO / "tests" / "fixtures" / "published_temporal_options.npz"))
    args = parser.parse_args(argv)
    published = load_published(Path(args.published))
    arrays = {}
    for name, (options, how) in CASES.items():
        torch.manual_seed(0)
        module = published.TemporalAttentionModule(feat_dim=DIM, hid_dim=HIDDEN, d_ff=FFN, dropout=0.0,
                                                   **{"head_num": 1, **options}).train()
        audio, vision = torch.randn(BATCH, SEGMENTS, DIM), torch.randn(BATCH, SEGMENTS, DIM)
        text = torch.randn(CLASSES, DIM)
        labels = torch.randint(0, CLASSES, (BATCH, SEGMENTS))
        for key, value in module.state_dict().items():
            arrays[f"{name}/state/{key}"] = value.numpy().copy()
        out_a, out_v = run(module, audio, vision, how)
        loss = published_loss(out_a, out_v, text, labels, "feature_mean" if name == "feature_mean" else "geometric")
        optimizer = torch.optim.Adam(module.parameters(), lr=LR)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            after_a, after_v = run(module, audio, vision, how)
        arrays.update({f"{name}/{key}": value.detach().numpy().copy() for key, value in {
            "audio": audio, "vision": vision, "text": text, "labels": labels, "out_audio": out_a, "out_vision": out_v,
            "loss": loss, "after_audio": after_a, "after_vision": after_v}.items()})
        arrays[f"{name}/options"] = np.array(repr({**options, "how": how}))
    arrays["meta/torch"] = np.array(torch.__version__)
    arrays["meta/lr"] = np.array(LR)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output}: {len(CASES)} cases")


if __name__ == "__main__":
    sys.exit(main())
