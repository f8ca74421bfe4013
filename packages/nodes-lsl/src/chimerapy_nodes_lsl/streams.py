"""Finding LSL streams and describing them: queries, resolution and stream descriptions.

pylsl (and so liblsl) is imported only when a node starts (:func:`load_pylsl`), never when the
pack is imported or listed. liblsl reads its configuration file (``LSLAPICFG``, else
``lsl_api.cfg`` in the usual places) once per process, at its first use.
"""

from __future__ import annotations

import logging
from typing import Any

from chimerapy_nodes_lsl.errors import LslStreamNotFoundError

__all__ = ["StreamQuery", "describe", "load_pylsl", "not_found", "resolve_one", "summary"]

logger = logging.getLogger(__name__)

#: How long to listen for the streams listed in a "no stream matched" error.
_LIST_WAIT = 1.0


def load_pylsl() -> Any:
    """The ``pylsl`` module (raises ImportError with what to install when it cannot load)."""
    try:
        import pylsl
    except (ImportError, OSError) as error:  # OSError: liblsl itself failed to load
        raise ImportError(
            f"the LSL nodes need pylsl with its liblsl ({error}); install it with "
            "`pip install pylsl` (its wheels ship liblsl)"
        ) from error
    return pylsl


class StreamQuery:
    """Which LSL stream an inlet wants: any combination of name, type and source id.

    Args:
        name: the stream's name (``StreamInfo.name()``), or None for any.
        type: the stream's content type (e.g. ``"EEG"``, ``"Markers"``), or None for any.
        source_id: the stream's source id, or None for any.

    Raises:
        ValueError: none of them given, or a value with both kinds of quote (not expressible
            in LSL's XPath query).
    """

    def __init__(
        self, *, name: str | None = None, type: str | None = None, source_id: str | None = None
    ) -> None:
        self.fields = {
            key: value
            for key, value in (("name", name), ("type", type), ("source_id", source_id))
            if value is not None
        }
        if not self.fields:
            raise ValueError(
                "an LSL stream query needs at least one of stream (the name), type or source_id"
            )
        for key, value in self.fields.items():
            if not isinstance(value, str):
                raise TypeError(f"the LSL stream's {key} must be a str, got {value!r}")
            if "'" in value and '"' in value:
                raise ValueError(
                    f"the LSL stream's {key} {value!r} holds both ' and \"; LSL queries "
                    "cannot express it: match on another field"
                )

    @property
    def predicate(self) -> str:
        """The XPath 1.0 predicate liblsl resolves (e.g. ``name='EEG' and type='EEG'``)."""
        return " and ".join(f"{key}={_quoted(value)}" for key, value in self.fields.items())

    def matches(self, info: Any) -> bool:
        """True if the ``pylsl.StreamInfo`` ``info`` fits this query."""
        return all(getattr(info, key)() == value for key, value in self.fields.items())

    def __str__(self) -> str:
        return ", ".join(f"{key} {value!r}" for key, value in self.fields.items())


def resolve_one(query: StreamQuery, timeout: float, *, pylsl: Any) -> Any | None:
    """The first stream found that fits ``query`` within ``timeout`` seconds, or None.

    When several fit, the newest one (last created) is taken, and the choice is logged.
    """
    found = pylsl.resolve_bypred(query.predicate, 1, max(timeout, 0.0))
    if not found:
        return None
    if len(found) > 1:
        found.sort(key=lambda info: info.created_at())
        logger.warning(
            "%d LSL streams fit %s: %s; taking the newest, %s",
            len(found),
            query,
            "; ".join(summary(info) for info in found),
            summary(found[-1]),
        )
    return found[-1]


def not_found(query: StreamQuery, timeout: float, *, pylsl: Any) -> LslStreamNotFoundError:
    """The error for a query that found nothing, listing the streams that are visible now."""
    visible = pylsl.resolve_streams(wait_time=_LIST_WAIT)
    seen = "; ".join(summary(info) for info in visible) if visible else "none"
    return LslStreamNotFoundError(
        f"no LSL stream with {query} appeared within {timeout:g} s. Streams visible: {seen}. "
        "Check the name, type or source_id, that the outlet runs, and that LSL can reach its "
        "host (lsl_api.cfg: ResolveScope, KnownPeers, SessionID)"
    )


def summary(info: Any) -> str:
    """One line naming a stream: name, type, source id, host, channels, format, rate."""
    rate = info.nominal_srate()
    return (
        f"name {info.name()!r} type {info.type()!r} source_id {info.source_id()!r} "
        f"on {info.hostname()!r}: {info.channel_count()} x {_format_name(info)} "
        f"at {'irregular' if rate == 0 else f'{rate:g} Hz'}"
    )


def describe(info: Any) -> dict[str, Any]:
    """A stream's description as plain values (for a DataChunk or a JSON file).

    Keys: ``name``, ``type``, ``source_id``, ``uid``, ``hostname``, ``channel_count``,
    ``channel_format``, ``nominal_rate`` (0.0: irregular), ``channel_labels``,
    ``channel_units``, ``channel_types`` (lists, or None when the outlet gave none),
    ``created_at`` (the outlet's LSL clock) and ``xml`` (the full description, with any
    device-specific metadata).
    """
    return {
        "name": info.name(),
        "type": info.type(),
        "source_id": info.source_id(),
        "uid": info.uid(),
        "hostname": info.hostname(),
        "channel_count": info.channel_count(),
        "channel_format": _format_name(info),
        "nominal_rate": float(info.nominal_srate()),
        "channel_labels": _channel_info(info, "label"),
        "channel_units": _channel_info(info, "unit"),
        "channel_types": _channel_info(info, "type"),
        "created_at": float(info.created_at()),
        "xml": info.as_xml(),
    }


def _channel_info(info: Any, field: str) -> list[str | None] | None:
    """One field of each ``desc/channels/channel`` element (read without pylsl's printing)."""
    channels = info.desc().child("channels")
    if channels.empty():
        return None
    values: list[str | None] = []
    channel = channels.child("channel")
    while not channel.empty():
        values.append(channel.child_value(field) or None)
        channel = channel.next_sibling("channel")
    return values if any(value is not None for value in values) else None


def _format_name(info: Any) -> str:
    names = ("undefined", "float32", "double64", "string", "int32", "int16", "int8", "int64")
    code = info.channel_format()
    return names[code] if 0 <= code < len(names) else str(code)


def _quoted(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"
