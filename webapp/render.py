"""HTML for an Answer: the status line, the per-second timeline, the event list and one class's
per-second scores. Every second and event carries ``data-seek`` (its start in seconds), which
the page turns into a jump of the player; strips are SVG scaled to the page's width, so an
hour of video is as cheap to draw as ten seconds."""

from __future__ import annotations

from html import escape

import numpy as np

from data.annotations import OTHER
from pipeline.localize import SCORE_DIGITS
from pipeline.localize_outputs import clock
from webapp.explorer import Answer

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
AUDIO_COLOUR, FRAME_COLOUR, CONFIDENCE_COLOUR = "#1f77b4", "#ff7f0e", "#222222"


def status_text(answer: Answer) -> str:
    """One line: which video, how it was decoded, and what the query had to encode."""
    name = escape(answer.video.name)
    if not answer.ok:
        return f"**{name}** could not be localized ({answer.result.status}): {escape(answer.result.reason)}"
    video = "video encoded now" if answer.result.encoded else "video not re-encoded (embeddings from the store)"
    words = f"{len(answer.new_names)} new name(s) encoded" if answer.new_names else "no new name encoded"
    waited = f" ({answer.waited:.2f} s of it waiting for another query)" if answer.waited >= 0.01 else ""
    partial = (f" · {answer.result.status}: {escape(answer.result.reason)}" if answer.result.status != "ok" else "")
    return (f"**{name}** · {len(answer.result.labels)} s · {escape(answer.method)} · {video} · {words} · "
            f"answered in {answer.seconds:.2f} s{waited}{partial}")


def colour(answer: Answer, name: str) -> str:
    return PALETTE[answer.names.index(name) % len(PALETTE)]


def playhead(height: int) -> str:
    """The player's position, moved by the page's script as the video plays."""
    return (f'<line class="ovl-playhead" x1="0" x2="0" y1="0" y2="{height}" stroke="#cc0000" stroke-width="2" '
            'vector-effect="non-scaling-stroke" pointer-events="none"/>')


def timeline_html(answer: Answer) -> str:
    """One row per class that occurs: its labelled seconds in its colour, every second shaded by
    the class's confidence sqrt(p_audio * p_frame). ``data-names`` says which query it answers."""
    if not answer.ok:
        return ""
    return (f'<div class="ovl-timeline" data-names="{escape(", ".join(answer.names[:-1]))}">'
            f"{_rows(answer)}</div>")


def span(result) -> int:
    """Seconds the timeline spans: to the end of the last segment (segments start where both
    picture and sound exist, so a late sound leaves the first seconds blank)."""
    return result.starts[-1] + 1 if result.starts else 0


def _rows(answer: Answer) -> str:
    result, seconds = answer.result, span(answer.result)
    if not answer.occurring():
        return f'<div class="ovl-empty">No event: each of the {len(result.labels)} s is labelled {OTHER}.</div>'
    labels = np.array(result.labels)
    html = []
    for name in answer.occurring():
        confidence = result.class_confidence(answer.names.index(name))
        cells = []
        for i, t in enumerate(result.starts):
            labelled = labels[i] == name
            fill, opacity = (colour(answer, name), 0.35 + 0.65 * confidence[i]) if labelled else \
                ("#888888", 0.6 * confidence[i])
            cells.append(f'<rect x="{t}" y="0" width="1" height="1" fill="{fill}" fill-opacity="{opacity:.3f}" '
                         f'data-seek="{t}"><title>{clock(t)} {escape(name)}: {confidence[i]:.2f}'
                         f'{" (labelled)" if labelled else ""}</title></rect>')
        html.append(f'<div class="ovl-row"><span class="ovl-name" style="color:{colour(answer, name)}">'
                    f'{escape(name)}</span><svg class="ovl-strip" viewBox="0 0 {seconds} 1" '
                    f'preserveAspectRatio="none">{"".join(cells)}{playhead(1)}</svg></div>')
    return "".join(html) + _axis(seconds)


def _axis(seconds: int, beside_names: bool = True) -> str:
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200) if seconds / s <= 10)
    ticks = "".join(f'<span class="ovl-tick" style="left:{100 * t / seconds:.3f}%">{clock(t)}</span>'
                    for t in range(0, seconds, step))
    spacer = '<span class="ovl-name"></span>' if beside_names else ""
    return f'<div class="ovl-row">{spacer}<div class="ovl-axis">{ticks}</div></div>'


def events_html(answer: Answer) -> str:
    if not answer.ok:
        return ""
    events = answer.result.events
    if not events:
        return '<div class="ovl-empty">No events.</div>'
    rows = "".join(f'<tr class="ovl-event" data-seek="{e["start"]:g}"><td style="color:{colour(answer, e["class"])}">'
                   f'{escape(e["class"])}</td><td>{clock(e["start"])}–{clock(e["end"])}</td>'
                   f'<td>{e["end"] - e["start"]:g} s</td><td>{e["score"]:.{SCORE_DIGITS}f}</td></tr>' for e in events)
    return ('<table class="ovl-events"><thead><tr><th>event (click to play)</th><th>time</th><th>length</th>'
            f'<th>score</th></tr></thead><tbody>{rows}</tbody></table>')


def scores_html(answer: Answer | None, name: str | None) -> str:
    """p_audio, p_frame and their geometric mean at every second for one class; its labelled
    seconds shaded."""
    if answer is None or not answer.ok or name not in answer.names:
        return ""
    k, result = answer.names.index(name), answer.result
    seconds = span(result)
    series = [("audio", AUDIO_COLOUR, result.audio_probability[:, k]),
              ("frame", FRAME_COLOUR, result.frame_probability[:, k]),
              ("confidence", CONFIDENCE_COLOUR, result.class_confidence(k))]
    shading = "".join(f'<rect x="{t}" y="0" width="1" height="100" fill="{colour(answer, name)}" '
                      f'fill-opacity="{0.18 if label == name else 0}" data-seek="{t}"><title>{clock(t)} audio '
                      f'{series[0][2][i]:.2f} frame {series[1][2][i]:.2f} confidence {series[2][2][i]:.2f}'
                      f'</title></rect>' for i, (t, label) in enumerate(zip(result.starts, result.labels)))
    lines = "".join(f'<polyline fill="none" stroke="{stroke}" stroke-width="2" vector-effect="non-scaling-stroke" '
                    f'points="{_points(result.starts, values)}"/>' for _, stroke, values in series)
    legend = " ".join(f'<span style="color:{stroke}">■ {label}</span>' for label, stroke, _ in series)
    return (f'<div class="ovl-scores"><div class="ovl-legend">{escape(name)}: {legend} (0 to 1; shaded: '
            f'labelled)</div><svg class="ovl-chart" viewBox="0 0 {seconds} 100" preserveAspectRatio="none">'
            f'{shading}{lines}{playhead(100)}</svg>{_axis(seconds, False)}</div>')


def _points(starts, values) -> str:
    return " ".join(f"{t + 0.5},{100 * (1 - value):.2f}" for t, value in zip(starts, values))
