"""The one registry type behind every name-to-constructor table (models, detectors, losses, datasets, ...).

timm's ``register_model`` / ``create_model`` pattern, made generic: an unknown name raises with the known ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Names mapped to objects of one kind (``kind``, for messages), in registration order.

    An unknown name raises ``error``, a ``ValueError`` subclass, so callers can catch either.
    """

    def __init__(self, kind: str, error: type[ValueError] = ValueError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, obj: T | None = None, *, name: str | None = None):
        """Add ``obj`` under ``name`` (default: its ``__name__``); usable as ``@reg.register`` or
        ``@reg.register(name="x")``. Returns ``obj``, so a decorated function stays itself."""

        def add(item: T) -> T:
            key = name if name is not None else item.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises ``self.error`` listing the known ones."""
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; choose one of {self.names()}") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a glob pattern, sorted."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        """Names in registration order."""
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)})"
