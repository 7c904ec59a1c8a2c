"""The SLO config in force and what is built from it, replaced together when the SLO file is reloaded.

The aggregator holds all the state; the decoder writes label ids into that aggregator's vocabularies; the
exposition renders its snapshots. The absorb step, the checkpointer and the tick all read them from one
`Engine`, so a reload (`reconfigure`, synchronous on the event loop) switches every reader at once and no
batch is half-absorbed across the switch.
"""

from __future__ import annotations

from sloguard import __version__
from sloguard.core.aggregator import Aggregator
from sloguard.core.spec import Config
from sloguard.core.state import RestoreReport
from sloguard.export.collector import Exposition
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import effective_input
from sloguard.sla_live import LiveSlas


class Engine:
    """``config`` and the ``aggregator``, ``decoder`` and ``exposition`` made for it."""

    def __init__(
        self, config: Config, *, sloth_compat: bool = False, input_preset: str | None = None
    ) -> None:
        self.sloth_compat = sloth_compat
        #: The preset the settings name, for SLO files without ``input:`` (the file's section wins).
        self.input_preset = input_preset
        self.config = config
        self.aggregator = Aggregator(config)
        #: The SLO file's SLAs, counted live (fed the batches the aggregator gets).
        self.slas = LiveSlas(config, background=True)
        self.decoder = self._decoder(config, self.aggregator)
        self.exposition = self._exposition(config)

    def _decoder(self, config: Config, aggregator: Aggregator) -> Decoder:
        return Decoder(vocabs=aggregator.vocabs, input=effective_input(config.input, self.input_preset))

    def _exposition(self, config: Config) -> Exposition:
        return Exposition(
            sloth_compat=self.sloth_compat,
            top_k={s.name: s.export_top_k for s in config.slos if s.export_top_k is not None},
            version=__version__,
        )

    def reconfigure(self, config: Config) -> RestoreReport:
        """Switch to ``config``: a fresh aggregator gets the state of every SLO whose spec did not change
        (the report says which were kept, started fresh, dropped), with its own decoder and exposition."""
        fresh = Aggregator(config)
        report = fresh.restore_state(self.aggregator.export_state())
        self.aggregator = fresh
        self.slas = LiveSlas(
            config, self.slas, background=True
        )  # keeps the SLAs whose SLA and SLO are unchanged
        # New vocabularies come with the new aggregator: the decoder must write ids into those (and the
        # file's input: mapping may have changed).
        self.decoder = self._decoder(config, fresh)
        self.config = config
        self.exposition = self._exposition(config)
        return report
