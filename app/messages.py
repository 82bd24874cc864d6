"""Panes that change their content without making the browser lay out the whole page.

BokehJS re-computes the layout of the *entire* document (every widget, every plot: ~900
models on this dashboard) whenever a layout model's ``visible``, ``css_classes`` or
``stylesheets`` change. On a 2-core machine one such pass costs the browser 50–300 ms,
and a live update used to trigger several: an alert appearing, the header spinner
switching on and off, and Panel re-sending an HTML pane's stylesheets on its first text
update. Measured in Chromium on an over-limit block shape: 1.6 s of which 0.8 s were
style recalculations, for ~0.1 s of server work.

The panes here only ever change their HTML ``text`` (a plain ``innerHTML`` update in the
browser, with no layout pass of the document):

* :class:`StaticHTML` — an HTML pane whose updates never re-send its stylesheets;
* :class:`MessageBox` — an alert that is empty instead of hidden;
* :class:`BusyIndicator` — the header spinner, drawn by CSS inside its own text.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False})

#: Colours of the alert kinds (those of Panel's Alert pane, so the look is unchanged).
ALERT_COLOURS = {
    "danger": ("#842029", "#f8d7da", "#f5c2c7"),
    "warning": ("#664d03", "#fff3cd", "#ffecb5"),
    "info": ("#055160", "#cff4fc", "#b6effb"),
    "success": ("#0f5132", "#d1e7dd", "#badbcc"),
}


class StaticHTML(pn.pane.HTML):
    """``pn.pane.HTML`` whose updates send only what changed, never its stylesheets.

    Panel rebuilds a pane's stylesheet list on every update; on the first update of a
    session the rebuilt list differs from the one sent with the page (new stylesheet
    models), so the browser receives a ``stylesheets`` change and lays out the whole
    document once per pane. The stylesheets of these panes never change after the page
    is built, so dropping them from updates loses nothing.
    """

    def _update(self, ref: str, model: Any) -> None:
        props = self._get_properties(model.document)
        props.pop("stylesheets", None)
        model.update(**props)


class MessageBox:
    """An alert box (Markdown text) that is empty, not hidden, when there is nothing to say.

    It quacks like the ``pn.pane.Alert`` it replaces: ``object`` is the Markdown text and
    ``visible`` says whether there is any (setting it ``False`` clears the text).
    """

    def __init__(self, alert_type: str = "danger", css_classes: list[str] | None = None,
                 margin: tuple[int, int] = (4, 5), font_size: str = "0.86em"):
        self.alert_type = alert_type
        self._margin = margin
        self._font_size = font_size
        self._object = ""
        self.pane = StaticHTML("", sizing_mode="stretch_width", margin=0,
                               css_classes=["message-box", *(css_classes or [])])

    @property
    def object(self) -> str:
        return self._object

    @object.setter
    def object(self, text: str) -> None:
        text = text or ""
        if text == self._object:
            return
        self._object = text
        self.pane.object = self.render(text)

    @property
    def visible(self) -> bool:
        return bool(self._object.strip())

    @visible.setter
    def visible(self, value: bool) -> None:
        if not value:
            self.object = ""

    def render(self, text: str) -> str:
        """The alert's HTML for Markdown ``text`` (nothing for an empty text)."""
        if not text.strip():
            return ""
        fg, bg, border = ALERT_COLOURS[self.alert_type]
        top, side = self._margin
        return (f"<div class='alert alert-{html.escape(self.alert_type)}' role='alert' style='"
                f"margin:{top}px {side}px;padding:6px 12px;border:1px solid {border};"
                f"border-radius:4px;color:{fg};background:{bg};font-size:{self._font_size};"
                f"overflow-wrap:anywhere'>{_MARKDOWN.render(text)}</div>"
                "<style>.alert p{margin:4px 0}.alert ul{margin:4px 0;padding-left:20px}</style>")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


class BusyIndicator:
    """The header's spinner: a CSS animation inside the pane's text, switched by ``value``.

    ``pn.indicators.LoadingSpinner`` switches with a ``css_classes`` change, which makes
    the browser lay out the whole page twice per computation (on and off).
    """

    _CSS = ("<style>.busy{width:SIZEpx;height:SIZEpx;box-sizing:border-box;border-radius:50%;"
            "border:3px solid rgba(255,255,255,0.25)}.busy.on{border-top-color:#ffffff;"
            "animation:busy-spin .8s linear infinite}@keyframes busy-spin{to{transform:rotate(360deg)}}"
            "</style>")

    def __init__(self, size: int = 22, margin: tuple[int, int] = (12, 6)):
        self._css = self._CSS.replace("SIZE", str(int(size)))
        self._value = False
        self.pane = StaticHTML(self._html(False), width=size, height=size, margin=margin,
                               css_classes=["busy-indicator"])

    def _html(self, on: bool) -> str:
        return f"{self._css}<div class='busy{' on' if on else ''}' title='computing'></div>"

    @property
    def value(self) -> bool:
        return self._value

    @value.setter
    def value(self, on: bool) -> None:
        if bool(on) != self._value:
            self._value = bool(on)
            self.pane.object = self._html(self._value)

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


class ProgressBar:
    """A progress bar with a line of text, drawn in the pane's HTML; empty when idle.

    Replaces a ``pn.indicators.Progress`` whose ``visible`` toggled at the start and end
    of every action (two layout passes of the whole page).
    """

    def __init__(self, margin: tuple[int, int] = (4, 8)):
        self._margin = margin
        self.pane = StaticHTML("", sizing_mode="stretch_width", margin=0,
                               css_classes=["action-progress"])

    def update(self, value: int, total: int, text: str = "") -> None:
        """Show ``value`` of ``total`` done, with ``text`` under the bar."""
        share = 100.0 * min(max(value, 0), max(total, 1)) / max(total, 1)
        top, side = self._margin
        self.pane.object = (
            f"<div style='margin:{top}px {side}px'>"
            f"<div style='height:8px;border-radius:4px;background:#e3e8ef;overflow:hidden'>"
            f"<div style='height:100%;width:{share:.1f}%;background:#0071c5'></div></div>"
            f"<div style='font-size:0.85em;color:#555;margin-top:3px'>{html.escape(text)}</div></div>")

    def clear(self) -> None:
        self.pane.object = ""

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane
