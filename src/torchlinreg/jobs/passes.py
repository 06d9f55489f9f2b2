"""The passes a fit makes over its file: each named on the progress line and its rows
counted, and the fitting pass's rows streamed to the solver with the rows and dropped
rows counted."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..data.design import Design, chunks
from ..data.prefetch import prefetched
from ..data.sources import Source
from ..errors import InputError
from ..progress import Progress


def too_few_rows(source: Source, rows: int, dropped: int, n_params: int) -> InputError:
    if rows == 0 and dropped:
        return InputError(
            f"{source.name}: every row was dropped for missing values; nothing to fit"
        )
    return InputError(
        f"{source.name}: {rows:,} row(s) for {n_params:,} parameters; "
        "a fit needs at least as many rows as parameters"
    )


class Passes:
    """Names each pass over the data on the progress line and counts its rows: every
    batch the source yields is counted, whoever reads it (the one-hot categories, the
    fit, its refinement, the robust covariance). ``planned`` passes are announced as
    "pass i of planned" (a refinement adds one when it is decided)."""

    def __init__(self, source: Source, progress: Progress, planned: int) -> None:
        self.source, self.progress = source, progress
        self.done = 0
        self.planned = planned
        batches = source.batches

        def counted(columns: Sequence[str], types: dict[str, Any] | None = None) -> Any:
            for batch in batches(columns, types):
                progress.update(batch.table.num_rows)
                yield batch

        source.batches = counted  # type: ignore[method-assign]

    def begin(self, what: str) -> None:
        self.done += 1
        self.planned = max(self.planned, self.done)
        label = "reading" if self.done == 1 else "reading again"
        if self.planned > 1:
            label += f" (pass {self.done} of {self.planned}: {what})"
        self.progress.phase(label, self.source.row_count)


class FitRows:
    """A design's chunks as the solver's validated chunks, each call a pass over the
    file; each pass counts the rows and the rows dropped for missing values (a fit that
    is refined is made again from its second pass, which later passes must repeat).

    Too short a file is refused before the solver builds a (parameters × parameters)
    factor it would then throw away: at once when the source knows its row count, else
    by holding the first pass's chunks back until there are as many rows as parameters.
    A rank's share of a file is not checked alone (``n_params`` 0): the job checks the
    ranks' total.
    """

    def __init__(self, source: Source, design: Design, passes: Passes, n_params: int) -> None:
        known = source.row_count
        if known is not None and known < n_params:
            raise too_few_rows(source, known, 0, n_params)
        self.source, self.design, self.passes = source, design, passes
        self.n_params = n_params
        self.rows = self.dropped = self.reads = 0

    def __call__(self) -> Iterator[Any]:
        self.reads += 1
        if self.reads > 1:
            self.passes.planned += 1
            self.passes.begin("refining the solution")
            # The fit is made again from the second pass (see fit_chunks): count anew,
            # so that the counts are those of the rows the model was fitted to.
            self.rows = self.dropped = 0
            for chunk, _ in prefetched(chunks(self.source, self.design)):
                self.rows += chunk.X.shape[0]
                self.dropped += chunk.dropped
                yield chunk.as_solver_chunk()
            return
        self.passes.begin("fitting")
        held: list[Any] | None = []
        for chunk, _ in prefetched(chunks(self.source, self.design)):
            self.rows += chunk.X.shape[0]
            self.dropped += chunk.dropped
            if held is None:
                yield chunk.as_solver_chunk()
                continue
            held.append(chunk)
            if self.rows >= self.n_params:
                for c in held:
                    yield c.as_solver_chunk()
                held = None
        if held is not None and self.rows < self.n_params:
            raise too_few_rows(self.source, self.rows, self.dropped, self.n_params)
        for c in held or ():  # enough rows for a share checked as a part (n_params 0)
            yield c.as_solver_chunk()
