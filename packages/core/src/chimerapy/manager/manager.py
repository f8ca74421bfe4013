"""Manager: the director of a cluster: Workers join it, it commits graphs, starts and stops them."""

from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import importlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import zmq

from .. import installed, shipping
from ..data_chunk import DataChunk
from ..errors import CommitError, MappingError, NodeError, StateError, WorkerLostError
from ..graph import Graph
from ..loop_thread import LoopThread
from ..net import auth, tls
from ..net.control import Envelope
from ..node import last_output
from ..node.node import Node
from ..private import make_folders
from .collect import ProgressCallback, WorkerCollection, collect_from
from .commit_plan import CommitPlan, WorkerRef, plan_commit
from .credentials import load_credentials
from .events import EventHub
from .gather import GatherResult
from .pipeline_record import describe_pipeline, edge_statistics, registry_names, with_pipeline_file
from .report import Fault, FaultLog, SessionReport, merge_collected
from .server import ManagerServer, WorkerLink
from .session import Session

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..archive.check import Report

__all__ = ["Manager"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: The states in which the nodes' loops run.
_NODES_RUN = ("running", "stepping", "preview")
#: What stop() checks each collected session with; imported in the background at commit.
_CHECK_MODULE = "chimerapy.archive.check"


def _one_at_a_time(method: Callable[..., _T]) -> Callable[..., _T]:
    """A lifecycle call of the Manager, holding ``Manager.lifecycle`` while it runs."""

    @functools.wraps(method)
    def locked(self: Manager, *args: Any, **kwargs: Any) -> _T:
        with self.lifecycle:
            return method(self, *args, **kwargs)

    return locked


class Manager:
    """The controller of a cluster: Workers, graph commits, start, stop, and shutdown.

    Lifecycle: connect Workers -> :meth:`commit_graph` -> :meth:`start` (or :meth:`step`) ->
    :meth:`stop` -> :meth:`shutdown`. Calls made out of order raise :class:`StateError`
    naming the call that is missing. :meth:`preview` runs the committed graph with nothing
    saved, and :meth:`record` (or :meth:`start`) then begins saving in the running nodes;
    after :meth:`stop`, :meth:`start`, :meth:`preview` or :meth:`record` run the same committed
    graph again into a new session folder. States: ``idle`` -> ``committed`` -> ``preview`` ->
    ``running`` (or ``stepping``) -> ``stopped`` -> (``preview`` | ``running``) ... -> ``shutdown``.

    Args:
        logdir: where session folders (recordings, logs, meta.json) are written (default:
            ``chimerapy-runs`` in the system's temporary folder, as ``cp.Manager()`` in 0.0.10's
            documentation relies on). As in
            ChimeraPy 0.0.10, :attr:`logdir` is then this Manager's current session folder
            inside it (chosen now; each later commit moves it on to a new one), and
            :attr:`root_logdir` is the folder given.
        port: the HTTP port; if taken, a free one is used (see :attr:`port`). 0 picks a free one.
        max_num_of_workers: the most Workers that may be connected at once.
        publish_logs_via_zmq: also publish every log record as JSON on a ZeroMQ PUB socket
            (:attr:`logs_address`; ``zmq_log_port=`` in kwargs fixes its port).
        dashboard_api: serve the REST API and dashboard.
        **kwargs: ``host`` (the interface to listen on; default loopback, ``"0.0.0.0"`` for
            every interface), ``token`` (the cluster secret; default ``$CHIMERAPY_TOKEN``, else
            the one kept in ``<logdir>/.chimerapy/token``, else a new random one; see
            :meth:`worker_command`), ``tls_certificate`` and ``tls_key`` (PEM files to serve
            instead of the self-signed certificate kept in ``<logdir>/.chimerapy/tls/``),
            ``archive_mode`` (the session folders' permissions; default 0o700, files 0o600;
            e.g. 0o750 lets a group read the archive), ``announce`` (publish this Manager on the local network by zeroconf, for
            ``cp-worker --discover``), ``zmq_log_port``, ``drain_timeout`` (seconds nodes may take to drain their inputs
            when stopped; default 5).

    The Manager serves HTTPS and WSS only; Workers pin its certificate's :attr:`fingerprint`.
    """

    def __init__(
        self,
        logdir: Path | str | None = None,
        port: int = 9000,
        max_num_of_workers: int = 50,
        publish_logs_via_zmq: bool = False,
        dashboard_api: bool = True,
        **kwargs: Any,
    ) -> None:
        #: The folder given: every session of this Manager is a folder in it.
        if logdir is None:
            logdir = Path(tempfile.gettempdir()) / "chimerapy-runs"
        self.root_logdir = Path(logdir).expanduser().resolve()
        self.root_logdir.mkdir(parents=True, exist_ok=True)
        self.max_num_of_workers = max_num_of_workers
        self.dashboard_api = dashboard_api
        self.drain_timeout = float(kwargs.pop("drain_timeout", 5.0))
        host = str(kwargs.pop("host", "127.0.0.1"))
        credentials = load_credentials(self.root_logdir, token=kwargs.pop("token", None),
                                       certificate=kwargs.pop("tls_certificate", None), key=kwargs.pop("tls_key", None))
        self.token = credentials.token
        #: The private file (0600) holding the token: what a Worker on another computer needs.
        self.token_file = credentials.token_file
        #: The fingerprint of the certificate this Manager serves (``sha256:...``), which Workers pin.
        self.fingerprint = credentials.identity.fingerprint
        os.environ[auth.TOKEN_ENV] = self.token  # Workers started from this program inherit it
        log_port = int(kwargs.pop("zmq_log_port", 0))
        announce = bool(kwargs.pop("announce", False))
        self.archive_mode = int(kwargs.pop("archive_mode", 0o700))
        if self.archive_mode & 0o700 != 0o700 or self.archive_mode & ~0o777:
            raise ValueError(f"archive_mode={self.archive_mode:#o}: give permission bits that keep the owner's rwx, "
                             "e.g. 0o700 (the default) or 0o750 to let a group read the archive")
        if kwargs:  # 0.0.10 took (and ignored) options of its own here: warn, do not refuse
            log.warning("Manager: ignoring unknown keyword arguments %s", sorted(kwargs))
        self.state = "idle"
        self.session: Session | None = None
        self._next_session: str | None = Session.new_id()  # the session logdir names, until a commit
        #: The latest preview of each node's output (thumbnails and values), for dashboards.
        self.previews: dict[str, dict[str, Any]] = {}
        self.errors: list[NodeError] = []
        #: What the check at the end of the last collection found (see ``chimerapy report``).
        self.check: Report | None = None
        self.node_states: dict[str, str] = {}
        self.node_stats: dict[str, dict[str, Any]] = {}
        self.final_stats: dict[str, dict[str, Any]] = {}
        #: The faults of the current session (see :mod:`chimerapy.manager.report`).
        self.faults = FaultLog()
        #: The report of the last stop() or collect() (None before the first).
        self.last_report: SessionReport | None = None
        self._stopped_ok = True
        self._lost_at: dict[str, float] = {}
        self.graph: Graph | None = None
        #: Held by each lifecycle call (commit, start, step, stop, collect) so that calls from
        #: several threads (a script, the REST API) run one at a time; hold it to make several
        #: calls one step (as the REST API's stop-then-collect does).
        self.lifecycle = threading.RLock()
        self._plan: CommitPlan | None = None
        self._shipped: list[shipping.Package] = []  # the packages of the last commit, for its later runs
        self._pending_logs: list[dict[str, Any]] = []
        self._log_socket: zmq.Socket | None = None
        self.logs_address: str | None = None
        if publish_logs_via_zmq:
            self._log_socket = zmq.Context.instance().socket(zmq.PUB)
            self._log_socket.setsockopt(zmq.LINGER, 0)
            if log_port:
                self._log_socket.bind(f"tcp://{host}:{log_port}")
            else:
                log_port = self._log_socket.bind_to_random_port(f"tcp://{host}")
            self.logs_address = f"tcp://{host}:{log_port}"
        self._loop = LoopThread("chimerapy-manager")
        #: Live events (states, stats, errors, logs, previews): ``subscribe()`` on the loop.
        self.events = EventHub(self._loop.loop)
        self._server = ManagerServer(
            token=self.token, max_workers=max_num_of_workers, on_event=self._on_event,
            on_change=self._on_worker_change, ssl_context=credentials.identity.server_context(),
            fingerprint=self.fingerprint, welcome=self._welcome,
        )
        if dashboard_api:
            from ..api.rest import add_api

            add_api(self._server.app, self)
        self._loop.run(self._server.start(host, port), timeout=30)
        auth.local_tokens[self.port] = self.token
        tls.local_fingerprints[self.port] = self.fingerprint
        self._announcement = None
        if announce:
            from ..net.discovery import announce_manager

            self._announcement = announce_manager(self.host, self.port, self.fingerprint)
        self._closed = False
        self._shut_down = threading.Event()
        _live_managers.add(self)
        # what meta.json records of the installation is read while Workers join, not at the first commit
        threading.Thread(target=_read_installation, daemon=True).start()
        log.info("Manager listening on %s:%s; Workers join with: %s", self.host, self.port,
                 self.worker_command())

    # -- properties ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def logdir(self) -> Path:
        """The current session's folder (``meta.json``, ``chimerapy.log``, one folder per Worker).

        Chosen when the Manager is made, as in ChimeraPy 0.0.10; each later commit moves it on
        to a new session folder. :attr:`root_logdir` is the folder given.
        """
        if self._next_session is None and self.session is not None:
            return self.session.path
        if self._next_session is None:
            self._next_session = Session.new_id()
        path = self.root_logdir / self._next_session
        make_folders(path, mode=self.archive_mode)  # made when first asked for, as 0.0.10 had it
        return path

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """The connected Workers: name -> registration info."""
        return {name: link.info for name, link in self._server.workers.items()}

    # -- public API ------------------------------------------------------------------------------

    def worker_command(self, name: str = "<name>") -> str:
        """The exact ``cp-worker`` command that joins this Manager from another computer.

        It pins this Manager's certificate and reads the token from a copy of :attr:`token_file`
        (copy it to the Worker's computer, e.g. with ``scp``, or set ``CHIMERAPY_TOKEN`` there);
        it never carries the token itself, so it is safe to print and log.
        """
        host = self.host if self.host not in ("0.0.0.0", "::") else "<this computer's IP>"
        return (f"cp-worker --ip {host} --port {self.port} --name {name} --fingerprint {self.fingerprint} "
                f"--token-file {self.token_file}")

    def dashboard_url(self) -> str:
        """A URL that signs a browser in to the dashboard once (a one-time code, valid for an hour)."""
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"https://{host}:{self.port}/?code={self._server.login_codes.issue()}"

    def wait_for_workers(self, count: int | Sequence[str], timeout: float = 30.0) -> bool:
        """Block until ``count`` Workers (or the Workers named) are connected.

        Returns:
            True when they are, False after ``timeout`` seconds.
        """
        async def ready() -> bool:
            def done() -> bool:
                if isinstance(count, int):
                    return len(self._server.workers) >= count
                return set(count) <= set(self._server.workers)

            async with self._server.changed:
                try:
                    await asyncio.wait_for(self._server.changed.wait_for(done), timeout)
                    return True
                except asyncio.TimeoutError:
                    return False

        return self._loop.run(ready(), timeout=timeout + 5)

    @_one_at_a_time
    def commit_graph(
        self,
        graph: Graph,
        mapping: Mapping[str, Sequence[str | Node]],
        send_packages: list[dict[str, Any]] | None = None,
        *,
        strict: bool = False,
    ) -> bool:
        """Create the graph's nodes on their Workers and connect them.

        Args:
            graph: the pipeline to deploy.
            mapping: Worker name (or id) -> the nodes it runs, by id, Node object or name.
                Nodes that share a name (see :meth:`Graph.unique_names`) are mapped by id or
                object; each node's files are in ``<worker>/<its unique name>/``.
            send_packages: packages to ship to Workers that lack them (see the registry docs).
            strict: raise :class:`CommitError` when the cluster cannot be set up, instead of
                returning False.

        Returns:
            True when every node ran ``prep`` and every edge is connected; False (as in
            ChimeraPy 0.0.10) when a node failed to load or raised in ``prep``, or the nodes
            could not be connected: the error, with the node's name and traceback, is logged
            and kept in :attr:`errors`, and nothing is left running.

        Raises:
            GraphError, MappingError: the graph or mapping is invalid (nothing was created).
            CommitError: with ``strict=True``, instead of returning False.
        """
        self._require_open()
        if self.state in _NODES_RUN:
            raise StateError(f"the cluster is {self.state}; call stop() before committing a new graph")
        packages = [shipping.build(spec, index) for index, spec in enumerate(send_packages or [])]
        workers = [WorkerRef(link.name, link.id, str(link.info.get("host_key", "")))
                   for link in self._server.workers.values()]
        plan = plan_commit(graph, mapping, workers, drain_timeout=self.drain_timeout,
                           shipped=frozenset(top for p in packages for top in p.top_levels))
        if self.state == "committed":
            self._loop.run(self._broadcast(self._plan_now().workers(), "destroy_nodes", timeout=30), timeout=40)
            self._set_state("idle")
        if _CHECK_MODULE not in sys.modules:  # loads while the nodes start, not when stop() checks the archive
            threading.Thread(target=importlib.import_module, args=(_CHECK_MODULE,), daemon=True).start()
        try:
            if packages:
                self._loop.run(self._ship(plan.workers(), packages), timeout=600)
            self._loop.run(self._commit(plan, [p.sha256 for p in packages]), timeout=300)
            self._shipped = packages
        except CommitError as error:
            if strict:
                raise
            log.error("%s", error.args[0] if error.args else error)
            for node_error in error.errors:
                log.error("%s", node_error)  # names the node and Worker, with the remote traceback
            if not error.errors:
                self.errors.append(NodeError(str(error), node="?", phase="commit"))
            return False
        return True

    def commit_pipeline(self, pipeline: Any) -> bool:
        """Commit a pipeline (a :class:`chimerapy.pipeline.Pipeline`, its dict, a file path, or a
        :class:`chimerapy.pipeline_checks.CheckedPipeline`).

        It passes :func:`chimerapy.pipeline_checks.check_pipeline` (the checks of ``chimerapy
        validate``, and that its Workers are connected) before anything is created. The session's
        ``meta.json`` keeps the pipeline (``"pipeline"``), so the editor can open it again.
        """
        from ..pipeline_checks import CheckedPipeline, check_pipeline, not_connected

        connected = sorted(link.name for link in self._server.workers.values())
        if isinstance(pipeline, CheckedPipeline):
            checked = pipeline
            missing = [worker for worker in checked.mapping if worker not in connected]
            if missing:
                raise MappingError(not_connected(missing[0], connected))
        else:
            checked = check_pipeline(pipeline, connected=connected)
        for path, message in checked.warnings:
            log.warning("%s: %s", path, message)
        with self.lifecycle:
            committed = self.commit_graph(checked.graph, checked.mapping, strict=True)
            meta = self._session_now().meta  # the pipeline as committed, with the file's name and run time
            self._session_now().update_meta(pipeline=with_pipeline_file(meta["pipeline"], checked.pipeline))
            return committed

    def request_registered_method(self, node: str, method: str, params: Mapping[str, Any] | None = None, *,
                                  timeout: float = 10.0) -> Any:
        """Call the method ``method`` (marked with :func:`chimerapy.register`) of the running ``node``.

        The node runs it on its own thread between two steps; the call and its outcome go into the
        session's log.

        Args:
            params: the method's arguments by name (JSON values; checked against its annotations).
            timeout: seconds to wait for the answer.

        Returns:
            What the method returned (its text when JSON cannot hold it).

        Raises:
            StateError: the pipeline is not running.
            GraphError: there is no node ``node``.
            NodeError: the method is not registered, the parameters do not fit, or it raised
                (``phase`` is ``"method"``; ``remote_traceback`` holds the node's message).
        """
        self._require_state("request_registered_method", _NODES_RUN)
        assert self._plan is not None and self.graph is not None
        node = self._plan.unique.get(self.graph.node(node), node)  # its unique name (see Graph)
        worker = self._plan.placement.get(node, "")
        link = self._server.workers.get(worker)
        if link is None:
            raise WorkerLostError(f"Worker {worker!r} of node {node!r} is not connected", worker=worker)
        shown = f"{node}.{method}({', '.join(f'{k}={v!r}' for k, v in (params or {}).items())})"
        reply = self._loop.run(link.request("call_method", {"node": node, "method": method, "params": dict(params or {}),
                                                             "timeout": timeout}, timeout=timeout + 5),
                               timeout=timeout + 10)
        if not reply.ok:
            self._write_log({"time": time.time(), "level": "ERROR", "worker": worker, "node": node,
                             "message": f"{shown} failed: {reply.error}"})
            raise NodeError(f"{shown} failed: {(reply.error or '').splitlines()[0] if reply.error else ''}",
                            node=node, phase="method", worker=worker, remote_traceback=reply.error or "")
        result = reply.data.get("result")
        self._write_log({"time": time.time(), "level": "INFO", "worker": worker, "node": node,
                         "message": f"called {shown} -> {result!r}"})
        return result

    @_one_at_a_time
    def start(self) -> bool:
        """Start every node's loop, recording (also after :meth:`step`). Returns True once every
        Worker confirmed.

        During a :meth:`preview` it is :meth:`record`: the running nodes begin saving. After
        :meth:`stop` it runs the committed graph again as a further recording, in a new session
        folder (:attr:`logdir` moves on; see :meth:`record`).

        Raises:
            StateError: nothing is committed, or the cluster runs already.
            CommitError: after a stop, the nodes could not be created again (nothing runs).
        """
        self._require_state("start", ("committed", "stepping", "preview", "stopped"))
        if self.state == "preview":
            return self._record_now()
        self._run_again_if_stopped()
        at = time.time()
        self._loop.run(self._broadcast(self._plan_now().workers(), "start", {"mode": "run"}), timeout=60)
        if self.state == "committed":
            self._session_now().update_meta(start_time=at)
        self._set_state("running")
        return True

    @_one_at_a_time
    def preview(self) -> bool:
        """Run the committed graph with nothing saved, to frame cameras and check levels.

        The nodes run their loops as when recording: data flows, previews, statistics and
        plots are live, registered methods can be called. Every ``save_*`` call is counted per
        node and record (``preview_saves`` in each node's stats: ``status()["nodes"][n]["stats"]``)
        and nothing is written: no record file, no record folder. :meth:`record` (or
        :meth:`start`) then begins saving in the same processes, without running ``prep``
        again; :meth:`stop` ends the preview (meta.json then says ``"recorded": false``).

        Allowed after :meth:`commit_graph`, and after :meth:`stop` (the committed graph runs
        again in a new session, as with :meth:`start`).

        Returns:
            True once every Worker confirmed.

        Raises:
            StateError: nothing is committed, or the cluster runs already.
            CommitError: after a stop, the nodes could not be created again (nothing runs).
        """
        self._require_state("preview", ("committed", "stopped"))
        self._run_again_if_stopped()
        at = time.time()
        self._loop.run(self._broadcast(self._plan_now().workers(), "start", {"mode": "run", "record": False}),
                       timeout=60)
        self._session_now().update_meta(preview_time=at)
        self._set_state("preview")
        return True

    @_one_at_a_time
    def record(self) -> bool:
        """Begin recording.

        During a :meth:`preview` the running nodes begin saving at once, in the processes they
        run in (no restart, ``prep`` is not run again): every ``save_*`` call from the moment
        each node gets the order is written, every earlier one was only counted.
        ``meta.json``'s ``start_time`` is the Manager's time of the order. After
        :meth:`commit_graph` it is :meth:`start`; after :meth:`stop` it runs the committed graph
        again as a further recording in a new session folder (see :meth:`start`).

        Returns:
            True once every Worker confirmed.

        Raises:
            StateError: nothing is committed, or the cluster records already.
            CommitError: after a stop, the nodes could not be created again (nothing runs).
        """
        self._require_state("record", ("committed", "preview", "stopped"))
        if self.state != "preview":
            return self.start()
        return self._record_now()

    def _record_now(self) -> bool:
        """Tell previewing nodes to save from now on; the session's recording starts now.

        The session records once any Worker's nodes do (so that :meth:`stop` collects them);
        a Worker that could not be told raises :class:`StateError` afterwards, naming it.
        """
        at = time.time()
        replies = self._loop.run(self._broadcast(self._plan_now().workers(), "record", {"at": at}, timeout=30,
                                                 strict=False), timeout=60)
        self._session_now().update_meta(start_time=at, recorded=True)
        self._set_state("running")
        failed = {worker: reply.error if isinstance(reply, Envelope) else str(reply)
                  for worker, reply in replies.items() if not (isinstance(reply, Envelope) and reply.ok)}
        if failed:
            raise StateError(f"record(): the nodes of Worker(s) {sorted(failed)} did not begin recording "
                             f"({'; '.join(f'{w}: {e}' for w, e in failed.items())}); the others record: "
                             f"stop() and start() again to record them all")
        return True

    def _run_again_if_stopped(self) -> None:
        """After a stop, create the committed graph's nodes again, in a new session.

        Nodes are respawned, not resumed: at stop each node's loop returned, its ``teardown``
        ran and released what ``prep`` opened (a camera, a file), its recordings were closed
        and its process exited, which is what makes a stopped session's files final for
        :meth:`collect`. Resuming a node would need its ``prep`` and ``teardown`` to be
        re-entrant, which nodes written for 0.0.10 never promised; a fresh process from the
        same committed plan (the commit's node code, placement, shipped packages) runs
        ``prep`` as the commit did and starts from a clean state, and a node that crashed in
        the last recording comes back too. The plan is made again for the Workers connected
        now (a Worker that came back on another host, new data-plane keys), and shipped
        packages are offered again (a Worker started anew since lacks them). The new session
        gets its own folder
        (:attr:`logdir` moves on), ``meta.json`` (with the same pipeline, and ``follows``
        naming the session before) and log.
        """
        if self.state != "stopped":
            return
        plan, previous = self._plan_now(), self._session_now()
        missing = [worker for worker in plan.workers() if worker not in self._server.workers]
        if missing:
            raise CommitError(f"cannot run the committed graph again: Worker(s) {missing} are not connected; "
                              f"start them again (cp-worker ... --name {missing[0]}) or commit another mapping")
        if "collected" not in previous.meta:
            log.warning("session %s was not collected; its recordings stay on the Workers until "
                        "Manager.collect_session(%r) brings them in", previous.id, str(previous.path))
        # planned again for the Workers connected now (one may have come back on another host),
        # with new data-plane keys for the new session
        workers = [WorkerRef(link.name, link.id, str(link.info.get("host_key", "")))
                   for link in self._server.workers.values()]
        mapping = {w: [n for n, pw in plan.placement.items() if pw == w] for w in plan.workers()}
        plan = plan_commit(plan.graph, mapping, workers, drain_timeout=plan.drain_timeout, shipped=plan.shipped)
        if self._shipped:  # again: only to a Worker that lacks them (e.g. one started anew since)
            self._loop.run(self._ship(plan.workers(), self._shipped), timeout=600)
        self._loop.run(self._commit(plan, [p.sha256 for p in self._shipped]), timeout=300)
        fields: dict[str, Any] = {"follows": previous.id}
        if "pipeline" in previous.meta:
            fields["pipeline"] = previous.meta["pipeline"]  # the pipeline file's name and run time too
        self._session_now().update_meta(**fields)
        log.info("a further recording of the committed graph: session %s (after %s)", self._session_now().id,
                 previous.id)

    @_one_at_a_time
    def step(self) -> bool:
        """Run one step of every source node (offline operation); other nodes react to inputs."""
        self._require_state("step", ("committed", "stepping"))
        at = time.time()
        self._loop.run(self._broadcast(self._plan_now().workers(), "step", {"mode": "step"}), timeout=60)
        if self.state == "committed":
            self._session_now().update_meta(start_time=at)
        self._set_state("stepping")
        return True

    def gather(self, timeout: float = 10.0) -> GatherResult:
        """Each node's latest output, as in ChimeraPy 0.0.10: node id -> DataChunk (or None).

        Works while the cluster runs or steps, and after :meth:`stop`, when it reports the
        outputs as of the stop (not those computed from data produced after it), so that they
        agree with each other. The result may also be indexed by the Node object, a node's
        unique name, or a name that only one node has.
        """
        self._require_state("gather", ("committed", *_NODES_RUN, "stopped"))
        plan, graph = self._plan, self.graph
        assert plan is not None and graph is not None  # set by every commit
        replies = self._loop.run(
            self._broadcast(plan.workers(), "gather", timeout=timeout, strict=False), timeout=timeout + 5
        )
        latest: dict[str, DataChunk | None] = dict.fromkeys(plan.unique_names())  # by unique name
        for worker, reply in replies.items():
            if not (isinstance(reply, Envelope) and reply.ok):
                log.warning("gather: no answer from Worker %s: %s", worker,
                            reply.error if isinstance(reply, Envelope) else reply)
                continue
            for name, encoded in reply.data.get("nodes", {}).items():
                if encoded is not None and name in latest:
                    # pickled values only from an authenticated Worker running our node code
                    latest[name] = last_output.decode(encoded)
        return GatherResult(plan.nodes_by_unique_name(), latest)

    @_one_at_a_time
    def stop(self, *, collect: bool = True) -> SessionReport:
        """Stop every node: sources first, then each node once it has drained its inputs.

        Then (unless ``collect=False``) bring every Worker's recordings into the session folder
        (see :meth:`collect`). Nodes that ignore the stop are ended (and reported). A full disk
        under the logdir does not raise: it is in the report.

        Returns:
            The :class:`~chimerapy.manager.report.SessionReport`: truthy when every node
            stopped when asked and (when collecting) every file arrived intact with no fault
            that lost data, as the bool this returned before; falsy otherwise, with the
            faults (what, where, when) and the node errors. Also kept as :attr:`last_report`.
        """
        self._require_state("stop", ("committed", *_NODES_RUN))
        previewed = self.state == "preview"
        grace = self.drain_timeout + 3.0
        replies = self._loop.run(
            self._broadcast(self._plan_now().workers(), "stop", {"grace": grace, "at": time.time()}, timeout=grace + 15,
                            strict=False),
            timeout=grace + 30,
        )
        killed = False
        for worker, reply in replies.items():
            if isinstance(reply, Envelope) and reply.ok:
                nodes = reply.data.get("nodes", {})
                self.faults.stop_replies(nodes, worker=worker)
                for name, info in nodes.items():
                    self.final_stats[name] = info.get("stats", {})
                    self.node_states[name] = "killed at stop" if info.get("killed") else info.get("state", "stopped")
                    killed = killed or bool(info.get("killed"))
        plan = self._plan_now()
        self.faults.deliveries(plan.lossless_edges(), self.final_stats, plan.placement)
        self._set_state("stopped")
        self._stopped_ok = not killed and all(isinstance(r, Envelope) and r.ok for r in replies.values())
        self._session_now().update_meta(stop_time=time.time(), node_stats=self.final_stats,
                                        edge_stats=edge_statistics(self.final_stats),
                                        **({"recorded": False} if previewed else {}))
        if collect:
            return self.collect()
        return self._report()

    @_one_at_a_time
    def collect(self, progress: ProgressCallback | None = None) -> SessionReport:
        """Bring every Worker's recordings of this session into ``<logdir>/<session>/<worker>/``.

        Files travel over HTTP and are verified with SHA-256 (a damaged file is fetched again);
        a Worker deletes its copy only once all its files arrived. ``meta.json`` gets the
        per-Worker result (merged with earlier collects, never overwritten), each Worker's
        clock offsets, the faults and whether the session is complete. Safe to call again:
        e.g. once a lost Worker is back, or once a full disk has room again.

        Args:
            progress: called as ``progress(worker, path, bytes_done, bytes_total)``.

        Returns:
            The :class:`~chimerapy.manager.report.SessionReport` (truthy when complete); its
            ``report[worker]`` is that Worker's {"files", "bytes", "retries", "missing",
            "error", "complete"}.
        """
        self._require_state("collect", ("stopped",))

        def report_progress(worker: str, path: str, done: int, total: int) -> None:
            self.events.publish({"type": "collect", "worker": worker, "path": path, "done": done, "total": total})
            if progress is not None:
                progress(worker, path, done, total)

        results: list[WorkerCollection] = self._loop.run(self._collect(report_progress, self._session_workers()),
                                                         timeout=3600)
        collected = dict(self._session_now().meta.get("collected", {}))
        for result in results:
            collected[result.worker] = merge_collected(collected.get(result.worker), result.as_dict())
            self.faults.arrived(result.worker, set(result.listed) - set(result.missing))
            self.faults.collection(result.worker, result.problems)
        clocks = {**self._session_now().meta.get("clock_offsets", {}), **{r.worker: r.clock for r in results if r.clock}}
        self._session_now().update_meta(collected=collected, clock_offsets=clocks)
        from ..archive.check import check_collected  # loaded at commit (see commit_graph)

        self.check = check_collected(self._session_now().path)
        if self.check is not None:
            self._session_now().update_meta(check=self.check.as_dict())
        self.events.publish({"type": "collected", "report": collected, "session": self._session_now().id})
        for result in results:
            item = collected[result.worker]
            if item["complete"]:
                log.info("collected %d files (%d bytes) from Worker %s", result.files, result.bytes, result.worker)
            else:
                log.error("collect from Worker %s is incomplete: %s missing %s",
                          result.worker, item["error"] or "", item["missing"])
        return self._report()

    def collect_session(self, folder: Path | str, *, timeout: float = 60.0) -> SessionReport:
        """Collect a session whose Manager is gone (crashed) into its folder ``<logdir>/<id>``.

        The Workers named in its ``meta.json`` keep their recordings until a Manager confirms
        them, and reconnect to the address they joined (run this Manager there: same host,
        port and token). Waits up to ``timeout`` seconds for them, collects from those that
        came, merges ``meta.json`` and returns the report (Workers that did not come are in
        it as not connected: collect again later).
        """
        self._require_open()
        if self.state in ("committed", *_NODES_RUN):
            raise StateError(f"the cluster is {self.state}; call stop() before collecting another session")
        session = Session.open(Path(folder))
        if self.session is not None:
            self.session.close()
        self.session, self.graph, self._plan = session, None, None
        self.faults = FaultLog(Fault.from_dict(item) for item in session.meta.get("faults", []))
        self._stopped_ok = True  # the Workers stop a session's nodes when they rejoin another Manager
        if session.meta.get("stop_time") is None:
            self.faults.add(Fault("manager_lost", "the session's Manager ended before stop(); its Workers kept "
                                  "their nodes recording until they rejoined a Manager", data_lost=False))
        self._set_state("stopped")
        workers = self._session_workers()
        log.info("collecting session %s from Workers %s", session.id, workers)
        self.wait_for_workers(workers, timeout=timeout)
        return self.collect()

    def shutdown(self) -> None:
        """Stop a running cluster, shut every Worker down, close the server. Idempotent."""
        if self._closed:
            return
        try:
            if self.state in ("committed", *_NODES_RUN):
                try:
                    self.stop()
                except Exception:
                    log.exception("Manager: stop during shutdown failed")
            names = list(self._server.workers)
            for link in self._server.workers.values():
                link.leaving = True
            self._loop.run(self._broadcast(names, "shutdown", timeout=10, strict=False), timeout=20)
            self._loop.run(self._wait_workers_gone(timeout=10), timeout=15)
        except Exception:
            log.exception("Manager: shutdown did not complete cleanly")
        finally:
            self._closed = True
            self._set_state("shutdown")
            try:
                self._loop.run(self._server.close(), timeout=10)
            except Exception:
                log.exception("Manager: closing the server failed")
            self._loop.stop()
            if self._log_socket is not None:
                self._log_socket.close(linger=0)
            if self.session is not None:
                self.session.close()
            _live_managers.discard(self)
            auth.local_tokens.pop(self.port, None)
            tls.local_fingerprints.pop(self.port, None)
            if self._announcement is not None:
                self._announcement.close()
            self._shut_down.set()

    def wait_until_shutdown(self, timeout: float | None = None) -> bool:
        """Block until :meth:`shutdown` has run (e.g. from the REST API); True if it has."""
        return self._shut_down.wait(timeout)

    def status(self) -> dict[str, Any]:
        """A snapshot: state, Workers, node states and latest stats, errors."""
        return {
            "state": self.state,
            "session": self.session.id if self.session else None,
            "workers": self.workers,
            "lost_workers": sorted(self._server.lost),
            "nodes": {name: {"state": self.node_states.get(name), "stats": self.node_stats.get(name, {})}
                      for name in (self._plan.unique_names() if self._plan else [])},
            "errors": [{"node": e.node, "phase": e.phase, "worker": e.worker, "traceback": e.remote_traceback}
                       for e in self.errors],
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<Manager {self.host}:{self.port} state={self.state} workers={list(self._server.workers)}>"

    # -- orchestration ---------------------------------------------------------------------------

    async def _ship(self, names: list[str], packages: list[shipping.Package]) -> None:
        """Send each Worker the packages it lacks; refuse version conflicts and import failures."""
        offers = await self._broadcast(names, "offer_packages", {"packages": [p.describe() for p in packages]},
                                       timeout=30, strict=False)
        problems, installs = [], {}
        for worker, reply in offers.items():
            if not isinstance(reply, Envelope) or not reply.ok:
                problems.append(f"Worker {worker!r}: {reply.error if isinstance(reply, Envelope) else reply}")
                continue
            problems += [f"Worker {worker!r}: {conflict}; uninstall it there, or send it with "
                         f"{{'name': ..., 'override': True}}" for conflict in reply.data["conflicts"]]
            wanted = set(reply.data["wanted"])
            if wanted:
                installs[worker] = {"packages": [
                    {**p.describe(), "archive": base64.b64encode(p.archive).decode()}
                    for p in packages if p.sha256 in wanted]}
        if not problems and installs:
            replies = await self._broadcast(list(installs), "install_packages", per_worker=installs,
                                            timeout=300, strict=False)
            problems += [f"Worker {w!r}: {r.error if isinstance(r, Envelope) else r}"
                         for w, r in replies.items() if not (isinstance(r, Envelope) and r.ok)]
        if problems:
            raise CommitError("send_packages failed:\n" + "\n".join(problems))

    async def _commit(self, plan: CommitPlan, packages: Sequence[str] = ()) -> None:
        if self.session is not None:
            self.session.close()
        self.session = Session(self.root_logdir, self._next_session, mode=self.archive_mode)
        self._next_session = None
        for record in self._pending_logs:
            self.session.write_log(record)
        self._pending_logs.clear()
        self.graph, self._plan = plan.graph, plan
        self.errors.clear()
        self.node_stats.clear()
        self.final_stats.clear()
        self.faults, self._stopped_ok, self._lost_at = FaultLog(), True, {}
        self.node_states = dict.fromkeys(plan.unique_names(), "creating")
        self._session_now().update_meta(
            graph=plan.graph.to_dict(),
            mapping={w: [n for n, pw in plan.placement.items() if pw == w] for w in plan.workers()},
            manager={"host": self.host, "port": self.port},
            workers={name: self._server.workers[name].info for name in plan.workers()},
            versions={"manager": installed.versions(),
                      "workers": {n: self._server.workers[n].info.get("versions", {}) for n in plan.workers()}},
            pipeline=describe_pipeline(plan, {n: self._server.workers[n].info for n in plan.workers()},
                                       logdir=self.root_logdir, manager_host=self.host, manager_port=self.port),
        )
        names = plan.workers()
        created = await self._broadcast(
            names, "create_nodes",
            per_worker={w: {"session": self.session.id, "nodes": plan.node_specs(w), "packages": list(packages)}
                        for w in names},
            timeout=120, strict=False,
        )
        errors = self._creation_errors(created)
        if errors:
            await self._broadcast(names, "destroy_nodes", timeout=30, strict=False)
            self._set_state("idle")
            self.errors.extend(errors)
            culprits = ", ".join(f"{e.node} ({e.phase})" for e in errors)
            raise CommitError(f"commit_graph failed: {culprits}", errors=errors)
        addresses = {name: info["addresses"] for reply in created.values() if isinstance(reply, Envelope)
                     for name, info in reply.data["nodes"].items()}
        connections = plan.connections(addresses)
        connected = await self._broadcast(names, "connect_nodes", per_worker=connections, timeout=60, strict=False)
        failures = {w: r for w, r in connected.items() if not (isinstance(r, Envelope) and r.ok)}
        if failures:
            await self._broadcast(names, "destroy_nodes", timeout=30, strict=False)
            self._set_state("idle")
            detail = "; ".join(f"{w}: {r.error if isinstance(r, Envelope) else r}" for w, r in failures.items())
            raise CommitError(f"commit_graph could not connect the nodes: {detail}")
        for name in plan.unique_names():
            self.node_states[name] = "ready"
        self._set_state("committed")

    def _creation_errors(self, replies: dict[str, Any]) -> list[NodeError]:
        errors: list[NodeError] = []
        for worker, reply in replies.items():
            if isinstance(reply, BaseException):
                errors.append(NodeError(str(reply), node="?", phase="load", worker=worker))
            elif not reply.ok:
                for item in reply.data.get("errors", []) or [{"node": "?", "phase": "load", "traceback": reply.error}]:
                    errors.append(NodeError(
                        f"node {item['node']!r} on Worker {worker!r} failed in {item['phase']}",
                        node=item["node"], phase=item["phase"], worker=worker,
                        remote_traceback=item.get("traceback") or "",
                    ))
        return errors

    async def _broadcast(
        self,
        names: Sequence[str],
        kind: str,
        data: dict[str, Any] | None = None,
        *,
        per_worker: dict[str, dict[str, Any]] | None = None,
        timeout: float = 30.0,
        strict: bool = True,
    ) -> dict[str, Envelope | BaseException]:
        """Send a request to each named Worker concurrently; gather replies by Worker name.

        With ``strict``, any failure raises (a lost Worker as WorkerLostError).
        """
        async def one(name: str) -> Envelope:
            link = self._server.workers.get(name)
            if link is None:
                raise WorkerLostError(f"Worker {name!r} is not connected", worker=name)
            payload = per_worker.get(name, {}) if per_worker is not None else (data or {})
            return await link.request(kind, payload, timeout=timeout)

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        replies = dict(zip(names, results))
        if strict:
            for name, reply in replies.items():
                if isinstance(reply, BaseException):
                    raise reply
                if not reply.ok:
                    raise StateError(f"Worker {name!r} could not {kind}: {reply.error}")
        return replies

    def _session_now(self) -> Session:
        if self.session is None:
            raise StateError("there is no session yet: call commit_graph() first")
        return self.session

    def _plan_now(self) -> CommitPlan:
        if self._plan is None:
            raise StateError("no graph is committed: call commit_graph() first")
        return self._plan

    def _session_workers(self) -> list[str]:
        """The Workers of the current session: the committed plan's, or those in meta.json."""
        if self._plan is not None:
            return self._plan_now().workers()
        return sorted(self._session_now().meta.get("mapping", {})) if self.session is not None else []

    def _report(self) -> SessionReport:
        """The current session's report; also written into meta.json and kept as last_report."""
        assert self.session is not None
        errors = self.status()["errors"]
        if self.session.write_error is not None:
            self.faults.add(Fault("meta_not_written" if "meta.json" in self.session.write_error else "disk_full",
                                  f"the session folder could not be written: {self.session.write_error}",
                                  data_lost=False))
        collected = dict(self._session_now().meta.get("collected", {}))
        report = SessionReport(self.session.id, stopped=self._stopped_ok, collected=collected,
                               faults=list(self.faults.faults), errors=errors,
                               uncollected=[name for name in self._session_workers() if name not in collected])
        self._session_now().update_meta(faults=[fault.as_dict() for fault in report.faults], complete=report.complete)
        self.last_report = report
        if not report:
            log.error("%s", report)
        return report

    async def _collect(self, progress: ProgressCallback | None, names: list[str]) -> list[WorkerCollection]:
        session = self._session_now()
        async with aiohttp.ClientSession() as http:  # each Worker's pin and key come with its file list
            async def one(name: str) -> WorkerCollection:
                link = self._server.workers.get(name)
                if link is None:
                    return WorkerCollection(name, error="the Worker is not connected; its data is missing")
                return await collect_from(link, session.id, session.path / name, http,
                                          folder_mode=session.folder_mode, file_mode=session.file_mode,
                                          progress=progress)

            return list(await asyncio.gather(*(one(name) for name in names)))

    async def _wait_workers_gone(self, timeout: float) -> None:
        async with self._server.changed:
            try:
                await asyncio.wait_for(self._server.changed.wait_for(lambda: not self._server.workers), timeout)
            except asyncio.TimeoutError:
                log.warning("Workers still connected after shutdown: %s", list(self._server.workers))

    # -- events from Workers ---------------------------------------------------------------------

    async def _on_event(self, link: WorkerLink, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type == "stats":
            self.node_stats.update(data["nodes"])
            if isinstance(data.get("clock"), dict):
                link.info["clock"] = data["clock"]  # live offset and uncertainty, for dashboards
            if isinstance(data.get("resources"), dict):
                link.info["resources"] = data["resources"]  # CPU and memory of the Worker's processes
            self.events.publish({"type": "stats", "worker": link.name, "nodes": data["nodes"],
                                 "clock": link.info.get("clock"), "resources": link.info.get("resources")})
        elif envelope.type == "preview":
            self.previews[data["node"]] = data["records"]
            self.events.publish({"type": "preview", "node": data["node"], "records": data["records"]})
        elif envelope.type == "node_state":
            self.node_states[data["node"]] = data["state"]
            self.events.publish({"type": "node_state", "node": data["node"], "state": data["state"]})
        elif envelope.type == "node_error":
            error = NodeError(
                f"node {data['node']!r} on Worker {link.name!r} raised in {data['phase']}",
                node=data["node"], phase=data["phase"], worker=link.name,
                remote_traceback=str(data.get("traceback", "")),
            )
            self.errors.append(error)
            self.faults.node_error(worker=link.name, node=str(data["node"]), phase=str(data["phase"]),
                                   text=error.remote_traceback)
            if data["phase"] == "process":
                self.node_states[data["node"]] = "crashed"
            self.events.publish({"type": "error", "node": error.node, "phase": error.phase, "worker": link.name,
                                 "traceback": error.remote_traceback})
            log.error("%s\n%s", error.args[0], error.remote_traceback)
            self._write_log({"time": time.time(), "level": "ERROR", "worker": link.name, "node": data["node"],
                             "message": f"{error.args[0]}:\n{error.remote_traceback}"})
        elif envelope.type == "log":
            for record in data["records"]:
                if isinstance(record, dict):
                    self._write_log({**record, "worker": link.name})

    def _on_worker_change(self, link: WorkerLink, connected: bool) -> None:
        verb = "connected" if connected else "disconnected"
        if not connected and self._plan is not None and link.name in self._plan_now().workers() \
                and self.state in ("committed", *_NODES_RUN):
            verb = "LOST"
            nodes = [node for node, worker in self._plan.placement.items() if worker == link.name]
            for node in nodes:
                self.node_states[node] = "lost"
            self._lost_at[link.name] = time.time()
            self.faults.worker_lost(link.name, nodes, state=self.state)
            log.error("Worker %s was lost while the cluster was %s; its nodes are marked lost and its data is "
                      "collected when it comes back (Manager.collect())", link.name, self.state)
        self.events.publish({"type": "workers", "worker": link.name, "connected": connected,
                             "workers": sorted(self._server.workers)})
        self._write_log({"time": time.time(), "level": "INFO", "worker": link.name, "message": f"Worker {verb}"})

    def _welcome(self, link: WorkerLink) -> dict[str, Any]:
        """What a (re)joining Worker is told: whether to keep its running nodes (``resume``).

        A Worker that lost the Manager (a stall, a cut cable) keeps its nodes running while it
        reconnects; it resumes when this Manager still runs that session, and the session's
        report says how long it was away and that nothing was lost. Otherwise it stops them
        (their files stay until collected).
        """
        session, running = link.info.get("session"), list(link.info.get("running") or [])
        plan = self._plan
        ours = (self.session is not None and session == self.session.id and plan is not None
                and link.name in plan.workers())
        resume = ours and self.state in ("committed", *_NODES_RUN)
        if ours and plan is not None and link.name in self._lost_at:
            placed = [n for n, w in plan.placement.items() if w == link.name]
            fault = self.faults.worker_back(link.name, lost_at=self._lost_at.pop(link.name), placed=placed,
                                            running=running)
            if resume:
                for node in running:
                    self.node_states[node] = self.state if self.state in ("running", "preview") \
                        else self.node_states.get(node, "ready")
            log.warning("%s", fault.message)
        return {"resume": resume}

    def _write_log(self, record: dict[str, Any]) -> None:
        self.events.publish({"type": "log", **record})
        if self.session is not None:
            self.session.write_log(record)
        elif len(self._pending_logs) < 10000:
            self._pending_logs.append(record)
        if self._log_socket is not None:
            try:
                self._log_socket.send_multipart([b"log", json.dumps(record, default=str).encode()], flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def _set_state(self, state: str) -> None:
        self.state = state
        self.events.publish({"type": "state", "state": state, "session": self.session.id if self.session else None})

    # -- guards ----------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise StateError("this Manager was shut down; create a new Manager")

    def _require_state(self, call: str, allowed: tuple[str, ...]) -> None:
        self._require_open()
        if self.state not in allowed:
            fixes = {"idle": "call commit_graph() first",
                     "stopped": "start(), preview() or record() run the committed graph again; "
                                "commit_graph() commits another",
                     "running": "call stop() first", "stepping": "call stop() first",
                     "preview": "call record() to save, or stop() first"}
            raise StateError(f"cannot {call}() while the cluster is {self.state}: {fixes.get(self.state, '')}")


def _read_installation() -> None:
    installed.versions()
    registry_names()


_live_managers: weakref.WeakSet[Manager] = weakref.WeakSet()


@atexit.register
def _shutdown_live_managers() -> None:
    """Shut down Managers the program forgot, so no Worker or node process is left behind."""
    for manager in list(_live_managers):
        try:
            manager.shutdown()
        except Exception:  # noqa: BLE001, S110 - best effort at interpreter exit
            pass
