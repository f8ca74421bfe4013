"""chimerapy report: a clean real session is called clean; problems planted in a real run (a 1 s
pause in a source, skips on a latest-only edge, a Worker killed mid-run, a clock jump written into
its offsets) are each named with when they happened."""

import json
import re

import pytest
from chimerapy.archive.check import check_session
from chimerapy.cli.main import main
from click.testing import CliRunner
from support.archive import clean_session, faulty_session  # noqa: F401 - fixtures

pytest.importorskip("matplotlib")


@pytest.mark.timeout(180)
def test_a_clean_session_is_called_clean(clean_session):  # noqa: F811
    result = CliRunner().invoke(main, ["report", str(clean_session.path)])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output.splitlines()[0]
    assert "camera/frames" in result.output
    offset = re.search(r"clock skewed: offset ([\d.]+) ms", result.output)
    assert offset and abs(float(offset.group(1)) - 30000) < 1
    page = (clean_session.path / "report.html").read_text()
    for image in ("report-rates.png", "report-timeline.png", "report-clock.png"):
        assert f"src='{image}'" in page
        data = (clean_session.path / image).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
        assert (clean_session.path / image).stat().st_mode & 0o077 == 0
    report = check_session(clean_session.path)
    assert report.clean, report.summary()
    frames = next(s for s in report.streams if s.key == "camera/frames")
    assert frames.median_interval == pytest.approx(1 / 30, rel=0.1) and frames.duplicates == 0
    assert frames.longest_gap < 0.5 and frames.out_of_order == 0
    assert sum(frames.rates) == frames.count
    edge = next(e for e in report.edges if (e.source, e.target) == ("camera", "beacon"))
    assert edge.lost == 0 and edge.received >= 90 and edge.latency_p50_ms is not None
    json.dumps(report.as_dict())  # ready for meta.json


@pytest.mark.timeout(240)
def test_planted_problems_are_each_named_with_their_time(faulty_session):  # noqa: F811
    result = CliRunner().invoke(main, ["report", str(faulty_session.path)])
    assert result.exit_code == 1, result.output
    report = check_session(faulty_session.path)
    problems = {}
    for problem in report.problems:
        problems.setdefault(problem.kind, []).append(problem)
    assert "PROBLEM gap" in result.output and "PROBLEM skipped" in result.output

    # the camera slept 1 s before frame 45: a gap in every stream it saves each frame
    from chimerapy.archive import open_session

    session = open_session(faulty_session.path)
    paused_at = session.stream("camera", "pause").value(0)["seen"]
    gaps = [p for p in problems["gap"] if p.stream in ("camera/frames", "camera/truth")]
    assert len(gaps) == 2
    for gap in gaps:
        assert paused_at - 0.05 < gap.time <= paused_at and gap.until - gap.time > 0.95

    skipped = problems["skipped"]
    assert skipped[0].edge == "camera -> slow" and skipped[0].time <= skipped[0].until

    killed_at = faulty_session.events["killed"]
    lost = problems["worker_lost"]
    assert lost[0].worker == "doomed" and killed_at < lost[0].time < killed_at + 10
    assert {p.worker for p in problems["collect_incomplete"]} == {"doomed"}
    assert all(p.time == lost[0].time for p in problems["collect_incomplete"] + problems["worker_absent_at_stop"])

    jumps = problems["clock_jump"]
    assert len(jumps) == 1 and jumps[0].worker == "w1"
    assert abs(jumps[0].until - faulty_session.events["clock_jump"]) < 1e-6
    assert "jumped by 250.0 ms" in jumps[0].message

    page = (faulty_session.path / "report.html").read_text()
    assert "worker_lost" in page and "clock_jump" in page and "skipped" in page
