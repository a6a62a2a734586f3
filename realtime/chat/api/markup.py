"""
The small Markdown subset of the API's descriptions (docstrings, help texts),
rendered to safe HTML for /api/docs/.

Handled: paragraphs (a blank line), `- ` lists, `code`, **strong**, *emphasis*
and [links](/path) to this site's own pages. Everything else is text: the input
is escaped first, a link to anywhere else keeps only its words, and a
parenthesised note pointing at the project's own files, "(PROTOCOL.md, section
REST)", is a note for developers and is left out.
"""

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

DEVELOPER_NOTE = re.compile(r"\s*\([^()]*\b[\w/.-]+\.(?:md|py)\b[^()]*\)")
CODE = re.compile(r"`([^`]+)`")
STRONG = re.compile(r"\*\*(\S(?:[^*]*\S)?)\*\*")
EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*\S)?)\*(?![\w*])")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
LIST_ITEM = re.compile(r"^\s*[-*]\s+")


def site_link(match: re.Match) -> str:
    text, url = match.group(1), match.group(2)
    # Only this site's own pages: a path ("/…", not "//host") or an anchor.
    if (url.startswith("/") and not url.startswith("//")) or url.startswith("#"):
        return f'<a href="{url}">{text}</a>'
    return text


def inline(text: str) -> str:
    """One escaped run of text with its inline marks; code spans are left as they are."""
    parts = CODE.split(escape(text))
    for index, part in enumerate(parts):
        if index % 2:
            parts[index] = f"<code>{part}</code>"
        else:
            part = LINK.sub(site_link, part)
            part = STRONG.sub(r"<strong>\1</strong>", part)
            parts[index] = EMPHASIS.sub(r"<em>\1</em>", part)
    return "".join(parts)


def markdown_html(text: str) -> SafeString:
    """`text` as HTML paragraphs and lists (safe: every character of the input is escaped)."""
    text = DEVELOPER_NOTE.sub("", text or "")
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if all(LIST_ITEM.match(line) for line in lines):
            items = "".join(f"<li>{inline(LIST_ITEM.sub('', line))}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{inline(' '.join(lines))}</p>")
    return mark_safe("".join(blocks))  # built from escaped text only
