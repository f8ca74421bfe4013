"""ml.vad in-process: espeak-ng speech between silences, noise, any rate and layout, gaps, errors;
and its parts: the speech segmenter and the streaming resampler."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from chimerapy import NodeError
from chimerapy.testing import NodeHarness, run_node
from chimerapy_nodes_ml import VoiceActivity
from chimerapy_nodes_ml.resample import StreamResampler
from chimerapy_nodes_ml.segments import SpeechSegmenter
from ml_media import audible_extent, audio_chunks

pytestmark = pytest.mark.timeout(60)

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank"
START = 1_700_000_000.0  # the aligned time of the first sample


def padded_speech(speech, rate_out=None):
    """The sentence between 1 s silences, and the truth: (samples, rate, start, end)."""
    samples, rate = speech(SENTENCE)
    first, last = audible_extent(samples, rate)
    silence = np.zeros(rate, np.int16)
    return np.concatenate([silence, samples, silence]), rate, START + 1 + first, START + 1 + last


def events_of(outputs):
    return [event for chunk in outputs for event in chunk.get("events")["value"]]


def test_speech_between_silences_starts_and_ends_within_150_ms_of_the_truth(speech):
    samples, rate, start, end = padded_speech(speech)
    outputs = run_node(VoiceActivity(), list(audio_chunks(samples, rate, block=1024, start=START)))
    assert len(outputs) == -(-len(samples) // 1024)  # one result per audio chunk
    events = events_of(outputs)
    assert [e["type"] for e in events][:1] == ["start"] and events[-1]["type"] == "end"
    assert [e["type"] for e in events] == ["start", "end"] * (len(events) // 2)
    assert abs(events[0]["time"] - start) <= 0.150, (events, start)
    assert abs(events[-1]["time"] - end) <= 0.150, (events, end)
    # the probability and the state follow the speech, chunk by chunk, in the audio's own time
    first = outputs[0]
    assert (
        first.get("timestamp")["value"] == START and first.get("duration")["value"] == 1024 / rate
    )
    for chunk in outputs:
        t = chunk.get("timestamp")["value"]
        if t + 0.3 < start - 0.15 or t > end + 0.5:  # well away from the speech
            assert (
                not chunk.get("speech")["value"] and chunk.get("speech_probability")["value"] < 0.5
            )
    middle = [c for c in outputs if start + 0.5 < c.get("timestamp")["value"] < end - 0.5]
    assert np.mean([c.get("speech")["value"] for c in middle]) > 0.8
    assert max(c.get("speech_probability")["value"] for c in middle) > 0.9


def test_white_noise_is_not_speech():
    rate = 48000
    noise = np.random.default_rng(7).normal(0, 0.1, 5 * rate).astype(np.float32)
    outputs = run_node(VoiceActivity(), list(audio_chunks(noise, rate, block=1024, start=START)))
    assert events_of(outputs) == []
    assert not any(c.get("speech")["value"] for c in outputs)
    assert max(c.get("speech_probability")["value"] for c in outputs) < 0.5


def test_48_khz_stereo_int16_in_small_blocks_gives_the_same_times(speech):
    samples, rate, start, end = padded_speech(speech)
    upsample = StreamResampler(rate, 48000)
    mono = np.concatenate([upsample.process(samples / 32768), upsample.process(np.zeros(64))])
    stereo = np.round(np.stack([mono, mono], axis=1) * 32767).astype(np.int16)
    outputs = run_node(VoiceActivity(), list(audio_chunks(stereo, 48000, block=480, start=START)))
    events = events_of(outputs)
    assert abs(events[0]["time"] - start) <= 0.150 and abs(events[-1]["time"] - end) <= 0.150, (
        events
    )


def test_one_channel_can_be_chosen(speech):
    samples, rate, start, _ = padded_speech(speech)
    quiet = np.zeros_like(samples)
    both = np.stack([quiet, samples], axis=1)
    heard = events_of(
        run_node(VoiceActivity(channel=1), list(audio_chunks(both, rate, block=2048, start=START)))
    )
    deaf = events_of(
        run_node(VoiceActivity(channel=0), list(audio_chunks(both, rate, block=2048, start=START)))
    )
    assert heard and abs(heard[0]["time"] - start) <= 0.150
    assert deaf == []


def test_a_gap_in_the_stream_restarts_the_model_and_keeps_times_right(speech):
    samples, rate, start, end = padded_speech(speech)
    chunks = list(audio_chunks(samples, rate, block=1024, start=START))
    kept = chunks[:10] + chunks[14:]  # four blocks lost in the silence before the speech
    outputs = run_node(VoiceActivity(), kept)
    events = events_of(outputs)
    assert abs(events[0]["time"] - start) <= 0.150 and abs(events[-1]["time"] - end) <= 0.150, (
        events
    )


def test_8_khz_audio_is_used_as_it_is(speech):
    samples, rate, start, end = padded_speech(speech)
    down = StreamResampler(rate, 8000)
    low = np.concatenate([down.process(samples / 32768), down.process(np.zeros(64))]).astype(
        np.float32
    )
    events = events_of(
        run_node(VoiceActivity(), list(audio_chunks(low, 8000, block=800, start=START)))
    )
    assert abs(events[0]["time"] - start) <= 0.150 and abs(events[-1]["time"] - end) <= 0.150, (
        events
    )


def test_inputs_without_samples_produce_nothing_and_bad_audio_names_what_arrived():
    assert run_node(VoiceActivity(), [{"cam": {"frame": np.zeros((4, 4, 3), np.uint8)}}]) == []
    with pytest.raises(NodeError) as caught:
        run_node(
            VoiceActivity(),
            [{"mic": {"samples": np.zeros((1024, 1), np.float32), "timestamp": 1.0}}],
        )
    assert "no 'rate' record" in caught.value.remote_traceback
    with pytest.raises(NodeError) as caught:
        run_node(
            VoiceActivity(channel=2),
            [{"mic": {"samples": np.zeros((1024, 2), np.float32), "rate": 16000}}],
        )
    assert "channel=2 was asked for" in caught.value.remote_traceback


def test_a_missing_or_foreign_model_names_the_path(tmp_path):
    missing = tmp_path / "vad.onnx"
    with pytest.raises(NodeError) as caught:
        run_node(
            VoiceActivity(model_path=str(missing)),
            [{"mic": {"samples": np.zeros(512, np.float32)}}],
        )
    assert (
        caught.value.phase == "prep"
        and f"model file {str(missing)!r} does not exist" in caught.value.remote_traceback
    )


@pytest.mark.parametrize(
    "option",
    [
        {"threshold": 1.5},
        {"neg_threshold": 0.9},
        {"min_silence": -1},
        {"channel": -1},
        {"threads": 0},
    ],
)
def test_bad_options_are_refused_when_the_node_is_created(option):
    with pytest.raises(ValueError, match="ml.vad 'vad'"):
        VoiceActivity(**option)


# -- the segmenter -----------------------------------------------------------------------------


def segment(probabilities, window=0.032, **options):
    segmenter = SpeechSegmenter(**options)
    return [e for i, p in enumerate(probabilities) for e in segmenter.update(i * window, window, p)]


def test_segments_begin_after_min_speech_and_end_after_min_silence():
    # 10 quiet windows, 20 speech windows, 10 quiet windows (32 ms each)
    events = segment(
        [0.0] * 10 + [0.9] * 20 + [0.0] * 10, min_speech=0.25, min_silence=0.1, pad=0.0
    )
    assert events == [
        {"type": "start", "time": pytest.approx(0.32)},
        {"type": "end", "time": pytest.approx(0.96)},
    ]


def test_blips_are_dropped_and_short_pauses_do_not_split_speech():
    blip = [0.0] * 5 + [0.9] * 3 + [0.0] * 10  # 96 ms of "speech": shorter than min_speech
    assert segment(blip, min_speech=0.25) == []
    pause = [0.9] * 20 + [0.0] * 2 + [0.9] * 20 + [0.0] * 10  # a 64 ms pause, under min_silence
    assert [e["type"] for e in segment(pause, min_silence=0.1)] == ["start", "end"]
    between = [0.9] * 20 + [0.4] * 10 + [0.0] * 10  # between the thresholds: still speech
    events = segment(between, threshold=0.5, min_silence=0.1, pad=0.0)
    assert events[-1] == {"type": "end", "time": pytest.approx(30 * 0.032)}


def test_padding_widens_segments_without_overlapping_the_previous_one():
    events = segment([0.9] * 20 + [0.0] * 4 + [0.9] * 20 + [0.0] * 10, min_silence=0.1, pad=0.2)
    assert [e["type"] for e in events] == ["start", "end", "start", "end"]
    assert events[0]["time"] == 0.0 - 0.2 and events[2]["time"] >= events[1]["time"]


# -- the resampler -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate_in", [48000, 44100, 22050, 11025, 16000])
def test_the_resampler_keeps_time_across_random_block_sizes(rate_in):
    resampler = StreamResampler(rate_in, 16000)
    tone = np.sin(2 * np.pi * 300 * np.arange(rate_in) / rate_in).astype(np.float32)
    sizes = np.random.default_rng(rate_in).integers(1, 3000, size=len(tone))
    edges = np.cumsum(sizes)
    pieces = [resampler.process(part) for part in np.split(tone, edges[edges < len(tone)])]
    out = np.concatenate(pieces)
    assert 16000 - 10 <= len(out) <= 16000
    expected = np.sin(2 * np.pi * 300 * np.arange(len(out)) / 16000)
    assert (
        np.max(np.abs(out - expected)[100:]) < 0.01
    )  # output sample j lies at input time j / 16000


def test_blocks_that_arrive_too_late_are_skipped_so_the_node_catches_up(speech):
    samples, rate, start, end = padded_speech(speech)
    chunks = list(audio_chunks(samples, rate, block=1024, start=START))
    node = VoiceActivity(max_lag=1.0)
    with NodeHarness(node) as harness:
        on_time = [harness.step(chunk) for chunk in chunks[:10]]
        clock = node.now
        node.now = lambda: clock() + 5.0  # as if the node had been stalled for 5 s (in the silence)
        late = [harness.step(chunk) for chunk in chunks[10:15]]
        node.now = clock
        caught_up = [harness.step(chunk) for chunk in chunks[15:]]
    assert all(on_time) and late == [None] * 5 and all(caught_up)
    assert caught_up[0].get("skipped")["value"] == 5
    events = events_of(caught_up)
    assert abs(events[0]["time"] - start) <= 0.150 and abs(events[-1]["time"] - end) <= 0.150, (
        events
    )


def read_rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_speech_and_segments_are_recorded_in_the_audios_time_unless_record_is_off(speech, tmp_path):
    samples, rate, start, _ = padded_speech(speech)
    chunks = list(audio_chunks(samples, rate, block=1024, start=START))
    outputs = run_node(VoiceActivity("vad"), chunks, directory=tmp_path / "on")
    rows = read_rows(tmp_path / "on" / "speech.csv")
    # one row per audio chunk, stamped with the time of its first sample
    assert [float(row["timestamp"]) for row in rows] == [START + i * 1024 / rate for i in range(len(outputs))]
    assert [row["speech"] == "True" for row in rows] == [c.get("speech")["value"] for c in outputs]
    assert [float(row["speech_probability"]) for row in rows] == [
        c.get("speech_probability")["value"] for c in outputs
    ]
    # one row per speech segment, stamped with its start: the events' own times
    events = events_of(outputs)
    segments = read_rows(tmp_path / "on" / "segments.csv")
    assert [(float(s["start"]), float(s["end"])) for s in segments] == list(
        zip([e["time"] for e in events[::2]], [e["time"] for e in events[1::2]], strict=True)
    )
    assert [float(s["timestamp"]) for s in segments] == [float(s["start"]) for s in segments]
    assert abs(float(segments[0]["start"]) - start) <= 0.150
    run_node(VoiceActivity("vad", record=False), chunks, directory=tmp_path / "off")
    assert not (tmp_path / "off").exists() or list((tmp_path / "off").iterdir()) == []


def test_a_segment_cut_short_by_the_end_of_the_audio_is_recorded_without_an_end(speech, tmp_path):
    samples, rate, start, _ = padded_speech(speech)
    cut = samples[: int((start - START + 0.8) * rate)]  # stops while the sentence goes on
    run_node(VoiceActivity("vad"), list(audio_chunks(cut, rate, block=1024, start=START)), directory=tmp_path)
    (segment,) = read_rows(tmp_path / "segments.csv")
    assert abs(float(segment["start"]) - start) <= 0.150
    assert segment["end"] == "" and segment["duration"] == ""
