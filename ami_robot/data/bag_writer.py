"""Writing ROS 2 messages, already serialized (CDR), into a rosbag2 in MCAP as they arrive.

`BagWriter` is the recorder's disk side, with no ROS, writing through rosbags' `Writer` (MCAP
storage, rosbag2 format 9, the standard message definitions of ROS 2 Kilted), so `ros2 bag info`,
`ros2 bag play`, Foxglove, the `mcap` tools and rosbags' reader open the result. Two ways to feed it:

- with a writer thread (the default): `put()` only appends to a bounded queue and never blocks, so a
  slow disk cannot stall the callbacks that feed it; a message that finds the queue full is dropped
  and counted;
- without (`writer_thread=False`): `put()` writes in the caller's thread, and `flush_if_due()` keeps
  the flush interval. For a caller that already batches its messages away from the control loop
  (`ami_robot.ros.recorder_node`): one thread then does all the work, never two at once.

What an interruption leaves:

- `close()` (Ctrl-C or SIGTERM reach the recorder as a stop request) writes the MCAP summary and
  footer and `metadata.yaml`: a complete bag.
- A hard kill (SIGKILL, power loss) leaves the MCAP data section without its summary, footer or
  `metadata.yaml`. Every `flush_interval_s` the writer closes its open chunk and flushes the file,
  so everything up to the last flush is on disk as complete chunks; `repair_bag()` reads those
  (the `mcap` stream reader stops at the cut) into a new complete bag, like `ros2 bag reindex`.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

BAG_VERSION: Literal[9] = 9
"""rosbag2 metadata format written (that of ROS 2 Jazzy and Kilted)."""


@dataclass(frozen=True)
class TopicInfo:
    """A recorded topic: fully qualified `name`, ROS type `msgtype` ("sensor_msgs/msg/Image"), and
    the QoS it is offered with (what `ros2 bag play` republishes it with)."""

    name: str
    msgtype: str
    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


@dataclass
class RecordingStats:
    """Per topic: messages written to the bag and messages dropped because the queue was full."""

    written: Counter[str]
    dropped: Counter[str]

    def summary(self) -> str:
        """One line per topic, `name: written [dropped]`."""
        names = sorted(set(self.written) | set(self.dropped))
        return "\n".join(
            f"{name}: {self.written[name]}" + (f" ({self.dropped[name]} dropped)" if self.dropped[name] else "")
            for name in names
        )


_STOP = object()


class BagWriter:
    """A rosbag2 directory `path` (must not exist) written by a thread from a bounded queue.

    `put(topic, receive_ns, data)` with CDR bytes from any thread; `close()` drains the queue,
    finishes the bag and returns the counts. Also a context manager.
    """

    def __init__(
        self, path: Path, queue_size: int = 10000, flush_interval_s: float = 1.0, writer_thread: bool = True
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.stats = RecordingStats(Counter(), Counter())
        self._typestore = get_typestore(Stores.ROS2_KILTED)
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._next_flush = time.monotonic() + flush_interval_s
        self._thread: threading.Thread | None = None
        if writer_thread:
            self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
            self._thread.start()

    @property
    def mcap_path(self) -> Path:
        """The MCAP file inside the bag directory."""
        return self.path / f"{self.path.name}.mcap"

    def put(self, topic: TopicInfo, receive_ns: int, data: bytes, block: bool = False) -> bool:
        """Queue one serialized message; False (and counted as dropped) if the queue is full,
        unless `block`, which waits for room (for offline copies, never for live callbacks).
        Without a writer thread: write it now (True)."""
        if self._thread is None:
            self._write_or_fail(topic, receive_ns, data)
            return True
        try:
            self._queue.put((topic, receive_ns, data), block=block)
        except queue.Full:
            self.stats.dropped[topic.name] += 1
            return False
        return True

    def close(self) -> RecordingStats:
        """Write what is queued, finish the bag (summary, footer, metadata.yaml); the counts."""
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join()
            self._writer.close()
            if self._error is not None:
                raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error
        return self.stats

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def flush_if_due(self) -> None:
        """Without a writer thread: flush (see `_flush`) if `flush_interval_s` has passed since the last
        flush; call it regularly. With one, the thread keeps the interval itself, and this does nothing."""
        if self._thread is None:
            self._flush_if_due()

    def _flush_if_due(self) -> None:
        if time.monotonic() >= self._next_flush:
            self._flush()
            self._next_flush = time.monotonic() + self.flush_interval_s

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, self._next_flush - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if item is not None:
                self._write_or_fail(*item)
            self._flush_if_due()

    def _write_or_fail(self, topic: TopicInfo, receive_ns: int, data: bytes) -> None:
        """Write one message; after a failure (the disk is full or gone) drop the rest, reported at close."""
        if self._error is not None:
            return
        try:
            self._write(topic, receive_ns, data)
        except Exception as exc:
            logger.error("cannot write to %s: %s", self.path, exc)
            self._error = exc

    def _write(self, topic: TopicInfo, receive_ns: int, data: bytes) -> None:
        connection = self._connections.get(topic.name)
        if connection is None:
            connection = self._writer.add_connection(
                topic.name, topic.msgtype, typestore=self._typestore, offered_qos_profiles=[_qos(topic)]
            )
            self._connections[topic.name] = connection
        self._writer.write(connection, receive_ns, data)
        self.stats.written[topic.name] += 1

    def _flush(self) -> None:
        """Close the open MCAP chunk and flush the file, so a hard kill keeps what came before.

        rosbags' MCAP writer keeps a chunk in memory until it holds 1 MiB; its `close_chunk` and
        file are not public API, so a rosbags without them only loses the kill protection."""
        storage: Any = self._writer.storage
        if storage is None or self._error is not None or not hasattr(storage, "close_chunk"):
            return
        if getattr(getattr(storage, "chunk", None), "msgs", None):
            storage.close_chunk()
        storage.bio.flush()


def _qos(topic: TopicInfo) -> Any:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    never = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=topic.depth,
        reliability=QosReliability.RELIABLE if topic.reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if topic.transient_local else QosDurability.VOLATILE,
        deadline=never,
        lifespan=never,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=never,
        avoid_ros_namespace_conventions=False,
    )


def repair_bag(path: Path) -> RecordingStats:
    """Make the bag directory `path` whose recorder was killed (an MCAP without summary or footer, no
    metadata.yaml) a complete bag again, keeping every message of its complete chunks. The cut
    file is kept beside it as `<name>.mcap.cut`. Returns the counts of the repaired bag."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    path = Path(path)
    source = path / f"{path.name}.mcap"
    kept = source.with_suffix(".mcap.cut")
    source.replace(kept)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    schemas: dict[int, str] = {}
    topics: dict[int, TopicInfo] = {}
    with kept.open("rb") as stream:
        writer = BagWriter(staging)
        try:
            for record in StreamReader(stream, skip_magic=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    topics[record.id] = _topic_from_channel(record, schemas[record.schema_id])
                elif isinstance(record, Message):
                    writer.put(topics[record.channel_id], record.log_time, record.data, block=True)
        except (McapError, EOFError, ValueError) as exc:  # the cut: the last record is incomplete
            logger.info("%s ends in an incomplete record (%s); kept what came before", kept, type(exc).__name__)
        finally:
            stats = writer.close()
    for item in staging.iterdir():
        item.replace(path / item.name)
    shutil.rmtree(staging.parent)
    return stats


def _topic_from_channel(channel: Any, msgtype: str) -> TopicInfo:
    qos_text = channel.metadata.get("offered_qos_profiles", "")
    return TopicInfo(
        channel.topic,
        msgtype,
        reliable="best_effort" not in qos_text,
        transient_local="transient_local" in qos_text,
    )
