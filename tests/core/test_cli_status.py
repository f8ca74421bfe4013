"""What chimerapy run shows: the rich node table and the collection progress, on and off a terminal."""

import io
import re

from chimerapy.cli.status import CollectProgress, StatusView, node_rows


class Terminal(io.StringIO):
    def isatty(self):
        return True


STATUS = {"nodes": {"camera": {"state": "running", "stats": {"rate": 29.96}},
                    "recorder": {"state": "running", "stats": {"rate": 30.0, "inputs": {"camera": {
                        "received": 120, "lost": 2, "skipped": 0, "latency_p50_ms": 3.25}}}}},
          "errors": [{"node": "recorder"}]}


def test_rows_sum_inputs_and_count_errors():
    rows = node_rows(STATUS, {"camera": "w1", "recorder": "w2"})
    assert rows == [["camera", "w1", "running", "30.0", "-", "-", "-", "-", "0"],
                    ["recorder", "w2", "running", "30.0", "120", "2", "0", "3.25", "1"]]


def test_off_a_terminal_the_table_is_printed_every_few_updates_as_plain_lines():
    stream = io.StringIO()
    with StatusView(stream, every=2) as view:
        for second in range(3):
            view.update(f"session s1  {second} s", node_rows(STATUS, {"camera": "w1", "recorder": "w2"}))
    text = stream.getvalue()
    assert "\x1b[" not in text  # no escape codes in a log file
    assert "session s1  0 s" in text and "session s1  1 s" not in text and "session s1  2 s" in text
    assert re.search(r"^recorder\s+w2\s+running\s+30\.0\s+120\s+2\s+0\s+3\.25\s+1", text, re.MULTILINE)


def test_collection_progress_shows_bytes_and_time_left_on_a_terminal():
    stream = Terminal()
    with CollectProgress(stream) as progress:
        progress("w1", "camera/video.mp4", 1_000_000, 4_000_000)
        progress("w1", "camera/video.mp4", 4_000_000, 4_000_000)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "collecting w1" in text and "4.0/4.0 MB" in text
    assert re.search(r"\d+:\d\d:\d\d", text)  # time left


def test_collection_progress_off_a_terminal_is_one_line_per_worker():
    stream = io.StringIO()
    with CollectProgress(stream) as progress:
        for done in (0, 2_500_000, 5_000_000):
            progress("w2", "audio/audio.wav", done, 5_000_000)
    assert stream.getvalue() == "collected w2: 5.0 MB\n"
