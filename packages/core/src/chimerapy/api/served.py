"""ServedManager: what the API needs of the Manager it is handed (the API never imports it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..graph import Graph
    from ..manager.events import EventHub
    from ..manager.report import SessionReport
    from ..manager.session import Session

__all__ = ["ServedManager"]


class ServedManager(Protocol):
    """What the API needs of the Manager it is handed (the API never imports the Manager)."""

    root_logdir: Path
    state: str
    session: Session | None
    graph: Graph | None
    events: EventHub
    previews: dict[str, dict[str, Any]]
    final_stats: dict[str, dict[str, Any]]
    lifecycle: Any  # a threading.RLock held by each lifecycle call

    @property
    def workers(self) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def commit_pipeline(self, pipeline: Any) -> bool: ...
    def start(self) -> bool: ...
    def preview(self) -> bool: ...
    def record(self) -> bool: ...
    def stop(self, *, collect: bool = True) -> SessionReport: ...
    def collect(self) -> SessionReport: ...
    def shutdown(self) -> None: ...
    def request_registered_method(self, node: str, method: str, params: Any = None, *,
                                  timeout: float = 10.0) -> Any: ...
