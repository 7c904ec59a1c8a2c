"""Request logs -> `core.sla` results: the replay path's file source and decoder, one `SlaCounter` per SLA.

The daemon's aggregator is not used: it keeps customer SLOs in coarse buckets (5 min to 1 h) for its
period only, while an SLA counts per customer and per slice of its measure (1 min for the compute
schemes) over any range. `SlaCounter` keeps exactly that, sparsely.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloguard.core.model import Rejections, Vocabs
from sloguard.core.sla import SlaCounter, SlaResult, SlaSpec, month_range
from sloguard.core.spec import Config
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import effective_input
from sloguard.ingest.source import EventSource

#: The decoder's label vocabularies are reset between batches past this many values (memory bound;
#: each counter keeps its own ids).
VOCAB_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Range:
    """What to report on: a calendar month (each SLA's own time zone) or an explicit ``[start, end)``."""

    month: tuple[int, int] | None = None
    start_ms: int | None = None
    end_ms: int | None = None

    def bounds(self, sla: SlaSpec) -> tuple[int, int]:
        if self.month is not None:
            return month_range(*self.month, sla.period.timezone)
        assert self.start_ms is not None and self.end_ms is not None
        return self.start_ms, self.end_ms


@dataclass
class SlaReport:
    """Every SLA evaluated, plus what the input held that was not used."""

    results: list[SlaResult]
    invalid: Rejections
    events: int


def run(
    source: EventSource,
    config: Config,
    slas: list[SlaSpec],
    span: Range,
    now_ms: int,
    input_preset: str | None = None,
) -> SlaReport:
    """Decode every record of ``source`` once and count it for each SLA; evaluate each at ``now_ms``
    (clipped to its range: a past month is reported whole)."""
    slos = {s.name: s for s in config.slos}
    counters = [SlaCounter(sla, slos[sla.slo], *span.bounds(sla), config.exclusions) for sla in slas]
    vocabs = Vocabs()
    decoder = Decoder(vocabs=vocabs, input=effective_input(config.input, input_preset))
    invalid = Rejections()
    events = 0
    for record in source.records():
        batch = decoder.decode(record, invalid)
        events += len(batch)
        for counter in counters:
            counter.ingest(batch)
        for vocab in (vocabs.service, vocabs.endpoint, vocabs.customer):
            if len(vocab) > VOCAB_LIMIT:
                vocab.reset()
    results = [c.evaluate(min(now_ms, c.end_ms)) for c in counters]
    return SlaReport(results, invalid, events)
