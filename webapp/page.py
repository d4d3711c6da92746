"""The Gradio page: components, their wiring and the handlers. Handlers are plain functions of
the components' values (:class:`Handlers`), so tests call them without a browser; every query
goes through :class:`webapp.explorer.Explorer` and so through the localizer."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from common.errors import UserError
from webapp.explorer import MB, Answer, Explorer
from webapp.render import events_html, scores_html, status_text, timeline_html

# A click on anything carrying data-seek (a second, an event) moves the player there; the
# player's position moves the playheads (media events do not bubble, so listen while capturing).
PLAYER_JS = """
const player = () => document.querySelector('#player video');
element.addEventListener('click', (event) => {
  const target = event.target.closest('[data-seek]');
  if (!target || !player()) return;
  player().currentTime = Number(target.dataset.seek);
  player().play().catch(() => {});
});
document.addEventListener('timeupdate', (event) => {
  if (event.target !== player()) return;
  for (const line of element.querySelectorAll('.ovl-playhead')) {
    line.setAttribute('x1', event.target.currentTime);
    line.setAttribute('x2', event.target.currentTime);
  }
}, true);
"""

CSS = """
.ovl-row { display: flex; align-items: center; gap: 8px; margin: 2px 0; }
.ovl-name { flex: 0 0 11em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }
.ovl-strip { flex: 1; height: 22px; background: #f4f4f4; cursor: pointer; }
.ovl-axis { flex: 1; position: relative; height: 1.2em; font-size: 0.8em; color: #666; }
.ovl-tick { position: absolute; transform: translateX(-50%); }
.ovl-tick:first-child { transform: none; }
.ovl-events { width: 100%; border-collapse: collapse; }
.ovl-events td, .ovl-events th { padding: 3px 8px; text-align: left; border-bottom: 1px solid #ddd; }
.ovl-event { cursor: pointer; }
.ovl-event:hover { background: #eef3ff; }
.ovl-chart { width: 100%; height: 140px; background: #fafafa; cursor: pointer; }
.ovl-empty { color: #666; padding: 6px 0; }
"""

NO_VIDEO = "Pick a video or upload one."
NO_WORDS = "Type class names, separated by commas (or load the benchmark's classes), then press Enter."
# Queries are let through Gradio's queue at once and wait in the Explorer's own lock (one query at a
# time: they share one encoder and one cache), so the time a browser waited is measured and shown.
QUERY_THREADS = 16


class Handlers:
    """What each component's event does; outputs in the order :func:`build` wires them."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    def videos(self):
        """The --videos folder's videos as they are now (a video added after start is offered)."""
        return gr.update(choices=self.explorer.choices())

    def pick(self, name):
        """(video, status) for a video picked from the --videos folder."""
        return self._video(self.explorer.chosen, name)

    def upload(self, path):
        """(video, status) for an uploaded file."""
        return self._video(self.explorer.uploaded, path)

    @staticmethod
    def _video(accept, given):
        if not given:
            return None, NO_VIDEO
        try:
            return str(accept(given)), ""
        except UserError as err:
            return None, f"**Error:** {err}"

    def query(self, video, words, method):
        """(answer, status, timeline, events, class choice, scores) for the words on the video."""
        if not video:
            return self._nothing(NO_VIDEO)
        if not words or not words.strip():
            return self._nothing(NO_WORDS)
        try:
            answer = self.explorer.ask(Path(video), words, method)
        except UserError as err:
            return self._nothing(f"**Error:** {err}")
        shown = (answer.occurring() or answer.names[:1]) if answer.ok else []
        chosen = shown[0] if shown else None
        choice = gr.update(choices=answer.names[:-1] if answer.ok else [], value=chosen)
        return (answer, status_text(answer), timeline_html(answer), events_html(answer), choice,
                scores_html(answer, chosen))

    @staticmethod
    def _nothing(message: str):
        return None, message, "", "", gr.update(choices=[], value=None), ""

    @staticmethod
    def player(video, answer: Answer | None):
        """The player shows the video unless a query found it unusable."""
        return None if not video or (answer is not None and not answer.ok) else video

    @staticmethod
    def scores(answer: Answer | None, name):
        return scores_html(answer, name)

    def benchmark_words(self, words):
        """(words, status): the benchmark's class names replace the words."""
        try:
            return ", ".join(self.explorer.benchmark_names()), ""
        except UserError as err:
            return words, f"**Error:** {err}"


def build(explorer: Explorer) -> gr.Blocks:
    handlers = Handlers(explorer)
    with gr.Blocks(title="OV-AVEL: explore a video by typing words", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as page:
        video, answer = gr.State(None), gr.State(None)
        gr.Markdown("## Where is each of your words heard and seen?\nPick or upload a video, type class names; "
                    f"an encoded video is asked about new words without being encoded again. Encoder: "
                    f"{explorer.localizer.backbone.describe(explorer.localizer.config)}.")
        with gr.Row():
            with gr.Column(scale=2):
                picked = gr.Dropdown(explorer.choices(), value=None, label=f"Video from {explorer.videos_given}",
                                     visible=explorer.videos is not None, elem_id="pick")
                uploaded = gr.File(label=f"Or upload a video (at most {explorer.max_upload_mb:g} MB: "
                                         "app.max_upload_mb)",
                                   type="filepath", elem_id="upload")
                player = gr.Video(label="Video", interactive=False, elem_id="player")
            with gr.Column(scale=3):
                words = gr.Textbox(label="Class names, comma-separated", placeholder="dog barking, lawn mower",
                                   lines=1, max_lines=4, elem_id="words")
                with gr.Row():
                    method = gr.Dropdown(list(explorer.decodings), value=next(iter(explorer.decodings)),
                                         label="Decoding", elem_id="method")
                    ask = gr.Button("Localize", variant="primary", elem_id="ask")
                    benchmark = gr.Button("Load the benchmark's classes", elem_id="benchmark")
                status = gr.Markdown(NO_VIDEO, elem_id="status")
                timeline = gr.HTML(elem_id="timeline", js_on_load=PLAYER_JS)
                events = gr.HTML(elem_id="events", js_on_load=PLAYER_JS)
                score_class = gr.Dropdown([], value=None, label="Per-second scores of", elem_id="score-class")
                scores = gr.HTML(elem_id="scores", js_on_load=PLAYER_JS)

        answered = [answer, status, timeline, events, score_class, scores]
        query = dict(fn=handlers.query, inputs=[video, words, method], outputs=answered,
                     concurrency_limit=QUERY_THREADS)
        for chosen in (picked.input(handlers.pick, picked, [video, status]),
                       uploaded.upload(handlers.upload, uploaded, [video, status])):
            chosen.then(**query).then(handlers.player, [video, answer], player)
        picked.focus(handlers.videos, None, picked)
        for asked in (ask.click, words.submit, method.input):
            asked(**query)
        benchmark.click(handlers.benchmark_words, words, [words, status]).then(**query)
        score_class.input(handlers.scores, [answer, score_class], scores)
    return page


def launch(page: gr.Blocks, explorer: Explorer, host: str, port: int | None) -> None:
    """Serve on ``host`` (loopback unless told otherwise); Gradio refuses larger uploads, and
    serves files from the --videos folder and its own upload folder only."""
    try:
        page.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, max_file_size=int(explorer.max_upload_mb * MB),
            allowed_paths=[str(explorer.videos)] if explorer.videos is not None else None, show_error=False,
            ssr_mode=False, css=CSS, theme=gr.themes.Default())
    except OSError as err:
        if port is None:
            raise
        raise UserError(f"cannot listen on {host}:{port} ({err}); the port is in use or not allowed: choose "
                        "another --port") from None
