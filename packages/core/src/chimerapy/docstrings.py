"""Node docstrings as plain text: reStructuredText markup removed, the summary, the ``Args:`` section.

The registry shows nodes to people (``chimerapy nodes -v``, the dashboard's editor) from their
Google-style class docstrings; :func:`plain` turns markup such as ``` ``fps`` ```,
``:class:`~chimerapy.Node```` or ``*file*`` into what it reads as, :func:`summary` returns the
whole first paragraph and :func:`arguments` the description of each entry of ``Args:``.
"""

from __future__ import annotations

import re

__all__ = ["arguments", "plain", "summary"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")
_SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_][\w, ]*?)(?:\s*\([^)]*\))?:\s*(.*)$")


def plain(text: str) -> str:
    """``text`` without inline reStructuredText markup, its lines joined into one."""

    def role(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        return target.rsplit(".", 1)[-1] if match.group(0).count("~") else target

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    return " ".join(text.split())


def summary(docstring: str) -> str:
    """The first paragraph of ``docstring`` as plain text (all of it, not its first line)."""
    paragraph = docstring.strip().split("\n\n", 1)[0]
    return plain(paragraph)


def arguments(docstring: str) -> dict[str, str]:
    """Each ``Args:`` entry's name -> its description as plain text (continuation lines joined).

    An entry naming several options (``package, version: ...``) gives each the description.
    """
    found: dict[str, str] = {}
    in_args, section_depth, entry_depth = False, 0, 0
    current: list[str] = []
    for line in docstring.expandtabs().splitlines():
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if not stripped:
            continue
        section = _SECTION.match(stripped)
        if section and (not in_args or depth <= section_depth):
            in_args = section.group(1) in ("Args", "Arguments", "Parameters")
            section_depth, entry_depth, current = depth, 0, []
            continue
        if not in_args:
            continue
        if depth <= section_depth:  # prose after the section
            in_args = False
            continue
        entry = _ENTRY.match(stripped)
        if entry and (not current or depth <= entry_depth):
            entry_depth = depth
            current = [name.strip().lstrip("*") for name in entry.group(1).split(",")]
            for name in current:
                found[name] = entry.group(2)
        else:
            for name in current:
                found[name] = f"{found[name]} {stripped}".strip()
    return {name: plain(text) for name, text in found.items()}
