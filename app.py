"""A local web app on the localizer: pick or upload a video, type class names, see where each is
heard and seen (a per-second timeline, the events, one class's scores), change a word and see the
new answer at once: an encoded video is asked about new words without being encoded again.

    python app.py --videos my_videos/                          # http://127.0.0.1:7860
    python app.py --videos my_videos/ --checkpoint runs/v1_fine_tuning/checkpoints/best.pt
    python app.py --videos my_videos/ cuerator.rule_file=runs/cuerator_policy/rule.json  # CueRator's rule too
    python app.py --videos demo/videos --config configs/demo/app.yaml   # random weights, no download
    python app.py --host 0.0.0.0 --port 8000 app.max_upload_mb=2000     # reachable from the network

Needs the app's requirements: pip install -r requirements-app.txt. Listens on 127.0.0.1 unless
--host says otherwise; only videos inside --videos can be picked; uploads above
app.max_upload_mb are refused.
"""

from __future__ import annotations

from common import cli
from common.errors import UserError
from pipeline.localize import Localizer

DEFAULT_CONFIG = "configs/app.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--videos", help="a folder whose videos (searched recursively) the page offers")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a fine-tuning or CueRator policy checkpoint the page offers as a decoding (repeat "
                             "for several)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                                                            "machine only)")
    parser.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    try:
        from webapp import page
        from webapp.explorer import Explorer
    except ImportError as err:
        raise UserError(f"the web app needs its requirements ({err}): pip install -r requirements-app.txt") from None
    explorer = Explorer(Localizer(config), args.videos, args.checkpoint, config.app.max_upload_mb,
                        (config.data.meta_csv, config.data.label_json))
    page.launch(page.build(explorer), explorer, args.host, args.port)


if __name__ == "__main__":
    cli.run(main)
