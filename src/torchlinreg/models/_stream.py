"""The stream ``fit_chunks`` reads: chunks validated at the boundary, read again
for refinement where the source allows it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import torch

    from ..data.chunks import Chunk

ChunkSource = Iterable[Any] | Callable[[], Iterable[Any]]


class ChunkStream:
    """Calling the stream starts a pass over ``chunks``: a re-iterable (a list, a
    reader object) or a function returning a fresh iterable. A one-shot iterator (a
    generator) can be read once only (``one_shot``).

    Items are :class:`~torchlinreg.data.chunks.Chunk` (already validated, as the file
    readers yield them), or ``(X, y)`` / ``(X, y, sample_weight)`` tuples or lists (a
    torch ``DataLoader``'s default collation), validated here with their row numbers
    in the whole stream.
    """

    def __init__(self, chunks: ChunkSource, device: torch.device | None) -> None:
        if not callable(chunks) and not isinstance(chunks, Iterable):
            raise InputError(
                f"fit_chunks takes an iterable of (X, y[, sample_weight]) chunks or a function "
                f"returning one; got {type(chunks).__name__}"
            )
        self._chunks = chunks
        self._device = device
        self.one_shot = not callable(chunks) and iter(chunks) is chunks

    def _items(self) -> Iterable[Any]:
        made = self._chunks() if callable(self._chunks) else self._chunks
        if not isinstance(made, Iterable):
            raise InputError(
                f"the chunk function returned {type(made).__name__}, not an iterable of chunks"
            )
        return made

    def __call__(self) -> Iterator[Chunk]:
        from ..data.chunks import Chunk, validate_chunk

        rows = 0
        for item in self._items():
            if isinstance(item, Chunk):
                chunk = item
            elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
                chunk = validate_chunk(*item, device=self._device, row_offset=rows, whole=False)
            else:
                raise InputError("each chunk must be a tuple (X, y) or (X, y, sample_weight)")
            rows += chunk.X.shape[0]
            yield chunk
