"""LeRobot v3.0's video layout: camera frames as MP4 files, written and read with PyAV (`pip install av`).

Followed from huggingface/lerobot's src/lerobot (datasets/utils.py: DEFAULT_VIDEO_PATH; datasets/
dataset_writer.py: an episode's video appended to the key's current file until that file holds
video_files_size_in_mb, its place kept in meta/episodes; datasets/video_utils.py: get_video_info's `info`
keys and the PyAV decoder's nearest-frame rule; configs/video.py: the encoders and their options):

    OUT/videos/<key>/chunk-000/file-000.mp4   one video stream, the episodes one after another
    meta/episodes columns                     videos/<key>/chunk_index, file_index, from_timestamp, to_timestamp

Frame t of an episode is the video's frame at from_timestamp + timestamp, `timestamp` being the frame's
parquet column (t / fps). The parquet files carry no column for a video feature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.store import DatasetError

VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
TOLERANCE_S = 1e-4  # LeRobot's default tolerance_s: a frame farther from its timestamp means the two disagree


@dataclass(frozen=True)
class Encoder:
    """An FFmpeg encoder with the pixel format and options it runs with (recorded in info.json)."""

    name: str
    pix_fmt: str
    options: dict[str, int]


# Preferred first: AV1 through libsvtav1, LeRobot's default encoder, at its preset 12 but with every frame
# a keyframe (g 1, LeRobot: 2) and crf 10 (LeRobot: 30). Measured on 60 rendered wall frames: at LeRobot's
# settings a third of the decoded frames lay nearer another frame than their own (an inter frame keeps
# its predecessor's small dot where it moved a few pixels), mean error 1.0/255; at these, 2% (frames
# nearly equal to a neighbour), mean error 0.18/255, ~600 bytes a 65x65 frame. x264's 4:2:0 needs even
# sizes and wall renders 65x65, so it runs at 4:4:4 (measured at crf 10: 0.10/255).
ENCODERS = (
    Encoder("libsvtav1", "yuv420p", {"g": 1, "crf": 10, "preset": 12}),
    Encoder("libx264", "yuv444p", {"g": 2, "crf": 10}),
)


def require_av() -> Any:
    """The `av` module (PyAV), or a RuntimeError that says how to install it."""
    try:
        import av
    except ImportError as exc:
        raise RuntimeError(
            f"LeRobot videos are written and read with PyAV ({exc}); install it with `pip install av` "
            "or `pip install wmplan[interchange]`"
        ) from exc
    return av


def choose_encoder(av: Any) -> Encoder:
    """The first of ENCODERS that this PyAV's FFmpeg can encode with."""
    for encoder in ENCODERS:
        if encoder.name in av.codecs_available:
            return encoder
    names = ", ".join(e.name for e in ENCODERS)
    raise RuntimeError(f"PyAV's FFmpeg here has none of the video encoders {names}; export with --frames png")


class VideoWriter:
    """One camera's episodes into LeRobot's MP4 files, a new file once one holds about `max_mb`; an
    episode never spans two files. `write` gives the episode's video columns of meta/episodes."""

    def __init__(self, root: Path, key: str, fps: int, *, max_mb: float, chunks_size: int):
        self.av = require_av()
        self.encoder = choose_encoder(self.av)
        self.root, self.key, self.fps = root, key, fps
        self.max_bytes, self.chunks_size = max_mb * 2**20, chunks_size
        self.file_number, self.frames_in_file, self.bytes = 0, 0, 0
        self.container: Any = None
        self.stream: Any = None
        # SVT-AV1 prints its settings on stderr unless told to log errors only
        os.environ.setdefault("SVT_LOG", "1")

    def path(self, file_number: int) -> Path:
        chunk, file = divmod(file_number, self.chunks_size)
        return self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=chunk, file_index=file)

    def write(self, frames: np.ndarray) -> dict[str, Any]:
        """Encode uint8 (T, H, W, 3) frames as the next episode."""
        if self.container is not None and self.bytes >= self.max_bytes:
            self._close_file()
            self.file_number += 1
        if self.container is None:
            self._open_file(frames.shape[1], frames.shape[2])
        start = self.frames_in_file
        for frame in frames:
            video_frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts, video_frame.time_base = self.frames_in_file, Fraction(1, self.fps)
            self._mux(self.stream.encode(video_frame))
            self.frames_in_file += 1
        chunk, file = divmod(self.file_number, self.chunks_size)
        prefix = f"videos/{self.key}/"
        return {
            prefix + "chunk_index": chunk,
            prefix + "file_index": file,
            prefix + "from_timestamp": start / self.fps,
            prefix + "to_timestamp": self.frames_in_file / self.fps,
        }

    def close(self) -> None:
        if self.container is not None:
            self._close_file()

    def info(self) -> dict[str, Any]:
        """The feature's `info` in meta/info.json, probed from the first file as LeRobot's get_video_info
        does (its codec by FFmpeg's canonical name, e.g. "av1"), with the encoder's settings."""
        with self.av.open(str(self.path(0))) as container:
            stream = container.streams.video[0]
            probed = {
                "video.height": stream.height,
                "video.width": stream.width,
                "video.codec": stream.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt,
                "video.fps": int(stream.base_rate),
                "video.channels": 3,
            }
        settings = {f"video.{name}": value for name, value in self.encoder.options.items()}
        return {**probed, "has_audio": False, "is_depth_map": False, **settings}

    def _open_file(self, height: int, width: int) -> None:
        path = self.path(self.file_number)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = self.av.open(str(path), "w")
        options = {name: str(value) for name, value in self.encoder.options.items()}
        self.stream = self.container.add_stream(self.encoder.name, rate=self.fps, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, self.encoder.pix_fmt
        self.frames_in_file, self.bytes = 0, 0

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self.bytes += packet.size
            self.container.mux(packet)

    def _close_file(self) -> None:
        self._mux(self.stream.encode())  # flush the frames the encoder still holds
        self.container.close()
        self.container = self.stream = None


# ----- reading -------------------------------------------------------------------------------------
class EpisodeVideos:
    """Where each episode of video feature `key` lies (meta/episodes), and its frames decoded from there."""

    def __init__(self, source: Path, info: dict[str, Any], key: str):
        self.av = require_av()
        self.source, self.key = source, key
        template = info.get("video_path")
        if not template:
            raise DatasetError(f"{source}/meta/info.json: {key} is a video feature but video_path is not set")
        self.template = str(template)
        self.codec = str((info["features"][key].get("info") or {}).get("video.codec", "unknown"))
        self.places = self._places()

    def frames(self, episode: int, timestamps: np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, 3): the episode's frames at `timestamps` (seconds from its start)."""
        if episode not in self.places:
            raise DatasetError(f"{self.source}/meta/episodes: no row for episode {episode}; the dataset is incomplete")
        chunk, file, start = self.places[episode]
        path = self.source / self.template.format(video_key=self.key, chunk_index=chunk, file_index=file)
        return decode_frames(self.av, path, start + np.asarray(timestamps, dtype=np.float64), self.codec)

    def _places(self) -> dict[int, tuple[int, int, float]]:
        import pyarrow.parquet as pq

        prefix = f"videos/{self.key}/"
        names = ["episode_index", prefix + "chunk_index", prefix + "file_index", prefix + "from_timestamp"]
        files = sorted((self.source / "meta" / "episodes").glob("*/*.parquet"))
        if not files:
            raise DatasetError(f"{self.source}/meta/episodes holds no parquet files; the dataset is incomplete")
        places = {}
        for path in files:
            try:
                rows = pq.read_table(str(path), columns=names).to_pydict()
            except Exception as exc:  # pyarrow's own error types, e.g. a missing column
                raise DatasetError(f"{path}: cannot read the video columns {names} ({exc})") from exc
            for episode, chunk, file, start in zip(*(rows[name] for name in names)):
                places[int(episode)] = (int(chunk), int(file), float(start))
        return places


def decode_frames(av: Any, path: Path, times: np.ndarray, codec: str) -> np.ndarray:
    """uint8 (T, H, W, 3): the frames of the video at `path` nearest to `times` (seconds), each within
    TOLERANCE_S. `codec` is what info.json says the file holds, named when FFmpeg has no decoder for it."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing; the dataset's videos are incomplete")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError(f"{path} holds no video stream")
            stream = container.streams.video[0]
            if stream.codec_context is None:  # no decoder: PyAV cannot name the codec, info.json can
                raise _undecodable(path, f"{codec!r} (meta/info.json's video.codec)", "no decoder")
            codec = stream.codec.canonical_name
            loaded = _decode_range(container, stream, float(times.min()), float(times.max()))
    except av.error.DecoderNotFoundError as exc:
        raise _undecodable(path, repr(codec), str(exc)) from exc
    except av.error.FFmpegError as exc:
        raise DatasetError(f"{path}: the {codec} video cannot be decoded ({exc}); the file is damaged") from exc
    found = np.array([t for t, _ in loaded])
    nearest = np.abs(found[None, :] - times[:, None]).argmin(axis=1) if len(found) else np.zeros(len(times), int)
    off = np.abs(found[nearest] - times) if len(found) else np.full(len(times), np.inf)
    if (off > TOLERANCE_S).any():
        bad = int(np.argmax(off > TOLERANCE_S))
        raise DatasetError(
            f"{path}: no frame within {TOLERANCE_S} s of {times[bad]:.4f} s (frame {bad} of the episode); "
            "the video and the frames' timestamps (meta/episodes from_timestamp + timestamp) disagree"
        )
    return np.stack([loaded[i][1] for i in nearest])


def _undecodable(path: Path, codec: str, why: str) -> DatasetError:
    return DatasetError(
        f"{path}: its video codec {codec} cannot be decoded by PyAV's FFmpeg here ({why}); re-encode the "
        "videos to AV1 or H.264, or install a PyAV built with that decoder"
    )


def _decode_range(container: Any, stream: Any, first: float, last: float) -> list[tuple[float, np.ndarray]]:
    """(time, RGB frame) of each frame from `first` to `last` seconds: decoding starts at the keyframe
    at or before `first`, since PyAV seeks to keyframes only."""
    container.seek(max(0, int(first / stream.time_base) - 1), backward=True, any_frame=False, stream=stream)
    loaded = []
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        time = float(frame.pts * stream.time_base)
        if time >= first - TOLERANCE_S:
            loaded.append((time, frame.to_ndarray(format="rgb24")))
        if time > last + TOLERANCE_S:
            break
    return loaded
