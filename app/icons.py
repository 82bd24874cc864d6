"""Button icons as inline SVG, so the page needs no icon font from the internet.

Panel's ``icon="name"`` loads the Tabler icon web font from a public CDN; on a lab machine
without network the buttons then show an empty box (and the label starts with a
no-break space). These few line icons are drawn here, 24 × 24, in ``currentColor``.
"""

from __future__ import annotations


def _svg(body: str) -> str:
    return ("<svg xmlns='http://www.w3.org/2000/svg' width='24' height='24' viewBox='0 0 24 24' "
            "fill='none' stroke='currentColor' stroke-width='2' stroke-linecap='round' "
            f"stroke-linejoin='round'>{body}</svg>")


#: arrow into a tray
DOWNLOAD = _svg("<path d='M12 4v11'/><path d='M7 10l5 5 5-5'/><path d='M4 17v3h16v-3'/>")
#: hooked arrow pointing left
UNDO = _svg("<path d='M9 14L4 9l5-5'/><path d='M4 9h11a5 5 0 0 1 0 10h-4'/>")
#: hooked arrow pointing right
REDO = _svg("<path d='M15 14l5-5-5-5'/><path d='M20 9H9a5 5 0 0 0 0 10h4'/>")
#: circular arrow
RESET = _svg("<path d='M20 11a8 8 0 1 0-2.3 5.7'/><path d='M20 4v7h-7'/>")
#: a house (back to the bundled example)
HOME = _svg("<path d='M4 11l8-7 8 7'/><path d='M6 10v10h12V10'/>")
