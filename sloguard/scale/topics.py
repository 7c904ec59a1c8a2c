"""`sloguard topics create`: the internal topics of the scaled-out mode (docs/scaling.md).

* partials: ``scale.partials_partitions`` (default 12): the number of stage-2 processes that can share the
  work; records name the count they were made for, so changing it later means new topics.
* cuts: one partition per input partition (of the input topic with the most), a few dozen bytes a range.
* checkpoints: ``scale.checkpoints_partitions``; give it a delete retention of several checkpoint
  intervals (Tansu has no compaction, and compaction would not suit chunked checkpoints).

An existing topic is left alone and reported with the partition count it has.
"""

from __future__ import annotations

from sloguard.ingest.kafka_topics import create_topics as create
from sloguard.ingest.kafka_topics import partition_counts
from sloguard.settings import Settings

__all__ = ["create_topics"]


async def create_topics(settings: Settings) -> list[str]:
    """Create the missing internal topics; one line per topic saying what was done."""
    kafka = settings.kafka.to_config()
    inputs = await partition_counts(kafka, kafka.topics)
    partials, cuts, checkpoints = settings.scale.topics(kafka.topics[0])
    wanted = [
        (partials, settings.scale.partials_partitions),
        (cuts, max(inputs.values())),
        (checkpoints, settings.scale.checkpoints_partitions),
    ]
    done = await create(kafka, wanted)
    return [
        f"{topic}: {'created' if created else 'exists'}, {count} partitions" for topic, count, created in done
    ]
