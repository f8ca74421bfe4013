"""The REST routes behind the dashboard's Review: a recorded session on one timeline, its check,
and the name and notes a person gives it.

    GET /api/sessions/{id}/streams   every stream for a timeline (:mod:`chimerapy.archive.overview`):
                                     kind, count, start, end, files to fetch, frame and block times,
                                     downsampled series of numbers and sound, JSON and text items as
                                     markers; ``?points=N`` and ``?markers=N`` change the limits;
                                     with the session's ``review`` (title, notes)
    GET /api/sessions/{id}/report    the session's check (:func:`chimerapy.archive.check.check_session`):
                                     the one ``meta.json`` holds from its collection, else run now;
                                     ``?run=1`` runs it again. ``html`` names ``report.html`` when
                                     ``chimerapy report`` wrote one
    PUT /api/sessions/{id}/notes     ``{"title": ..., "notes": ...}`` saved into ``meta.json``'s
                                     ``review`` (with ``updated``, a UNIX time); a key left out keeps
                                     its saved value. A title holds at most :data:`MAX_TITLE`
                                     characters and no control character, notes at most
                                     :data:`MAX_NOTES` (tabs and line breaks allowed)

Files themselves (videos, sound, images) come from ``GET /api/sessions/{id}/files/{path}``
(:mod:`.sessions`), which answers range requests. ``meta.json`` is rewritten whole and atomically,
0600, through :class:`chimerapy.manager.session.Session`: the Manager's own copy for the session it
holds, so its later writes keep the notes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .jsonio import ApiError, json_response, read_json
from .sessions import session_folder

if TYPE_CHECKING:
    from .served import ServedManager

__all__ = ["MAX_NOTES", "MAX_TITLE", "add_review_routes", "check_review"]

log = logging.getLogger(__name__)

#: The longest title of a session, in characters.
MAX_TITLE = 200
#: The longest notes of a session, in characters.
MAX_NOTES = 20_000
#: The largest body of a notes request (notes of MAX_NOTES characters of up to 4 UTF-8 bytes fit).
MAX_NOTES_BODY = 128 * 1024
_LIMITS = {"points": (4, 20_000), "markers": (1, 20_000)}
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def check_review(data: Any) -> dict[str, str]:
    """The ``title`` and ``notes`` of a notes request, checked.

    Raises:
        ApiError: 400 naming what is wrong: not an object, other keys, a value that is not a
            string, one too long, or a control character in it.
    """
    if not isinstance(data, dict):
        raise ApiError(400, f"the body is a JSON {type(data).__name__}; send an object "
                            f'{{"title": "...", "notes": "..."}}')
    unknown = sorted(set(data) - {"title", "notes"})
    if unknown:
        raise ApiError(400, f"unknown key(s) {', '.join(map(repr, unknown))}; a session's review has only "
                            f'"title" and "notes"')
    if not data:
        raise ApiError(400, 'the body is empty; send {"title": "...", "notes": "..."} (either or both)')
    checked = {}
    for key, most, controls in (("title", MAX_TITLE, frozenset()), ("notes", MAX_NOTES, _ALLOWED_CONTROLS)):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str):
            raise ApiError(400, f"{key!r} is a JSON {type(value).__name__}; send it as a string")
        if len(value) > most:
            raise ApiError(400, f"{key!r} has {len(value)} characters, more than {most}; shorten it")
        for position, character in enumerate(value):
            if unicodedata.category(character) == "Cc" and character not in controls:
                raise ApiError(400, f"{key!r} holds the control character U+{ord(character):04X} at position "
                                    f"{position}; remove it" + ("" if controls else " (a title is one line)"))
        checked[key] = value.strip() if key == "title" else value
    return checked


def add_review_routes(app: web.Application, manager: ServedManager) -> None:
    """Register the Review's routes on ``app``."""
    writing = threading.Lock()  # one meta.json rewrite at a time from this API

    async def streams(request: web.Request) -> web.Response:
        folder = session_folder(manager.root_logdir, request.match_info["session"])
        return json_response(await asyncio.to_thread(_overview, folder, dict(request.query)))

    async def report(request: web.Request) -> web.Response:
        folder = session_folder(manager.root_logdir, request.match_info["session"])
        rerun = request.query.get("run", "") not in ("", "0", "false", "no")
        return json_response(await asyncio.to_thread(_report, folder, rerun=rerun))

    async def notes(request: web.Request) -> web.Response:
        folder = session_folder(manager.root_logdir, request.match_info["session"])
        review = check_review(await read_json(request, what="the session's title and notes",
                                              limit=MAX_NOTES_BODY))

        def save() -> dict[str, Any]:
            with writing:
                return _save_review(manager, folder, review)

        return json_response({"session": folder.name, "review": await asyncio.to_thread(save)})

    app.router.add_get("/api/sessions/{session}/streams", streams)
    app.router.add_get("/api/sessions/{session}/report", report)
    app.router.add_put("/api/sessions/{session}/notes", notes)


def _limit(query: dict[str, str], name: str, default: int) -> int:
    low, high = _LIMITS[name]
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(400, f"?{name}={text!r} is not a whole number from {low} to {high}")
    return int(text)


def _overview(folder: Path, query: dict[str, str]) -> dict[str, Any]:
    from ..archive import open_session  # loaded on first use: it needs PyAV
    from ..archive.overview import MAX_MARKERS, MAX_POINTS, session_overview

    points, markers = _limit(query, "points", MAX_POINTS), _limit(query, "markers", MAX_MARKERS)
    with open_session(folder) as session:
        overview = session_overview(session, points=points, markers=markers)
        review = session.meta.get("review")
    overview["review"] = review if isinstance(review, dict) else {}
    return overview


def _report(folder: Path, *, rerun: bool) -> dict[str, Any]:
    from ..archive import open_session
    from ..archive.check import check_session

    html = "report.html" if (folder / "report.html").is_file() else None
    with open_session(folder) as session:
        saved = session.meta.get("check")
        if isinstance(saved, dict) and not rerun:
            return {"session": folder.name, "source": "meta.json", "report": saved, "html": html}
        checked = check_session(session).as_dict()
    return {"session": folder.name, "source": "check", "report": checked, "html": html}


def _save_review(manager: ServedManager, folder: Path, review: dict[str, str]) -> dict[str, Any]:
    """Merge ``review`` into ``meta.json``'s ``review`` of the session in ``folder``."""
    from ..manager.session import Session

    current = manager.session
    if current is not None and current.path.resolve() == folder.resolve():
        with manager.lifecycle:  # not in the middle of a stop or collect that rewrites meta.json
            return _merge(current, review)
    try:
        session = Session.open(folder)
    except ValueError as error:  # meta.json is not JSON
        raise ApiError(409, f"the meta.json of session {folder.name!r} cannot be read ({error}); "
                            f"the notes were not saved") from None
    try:
        return _merge(session, review)
    finally:
        session.close()


def _merge(session: Any, review: dict[str, str]) -> dict[str, Any]:
    saved = session.meta.get("review")
    merged = {"title": "", "notes": "", **(saved if isinstance(saved, dict) else {}), **review,
              "updated": time.time()}
    if not session.update_meta(review=merged):
        raise ApiError(507, f"meta.json of session {session.id!r} could not be written ({session.write_error}); "
                            f"make room on the disk and save again")
    log.info("session %s: review saved (title %r, %d characters of notes)", session.id, merged["title"],
             len(merged["notes"]))
    return merged
