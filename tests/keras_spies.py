"""What tests watch inside ``weightio.keras`` (shared by the Keras 3 and tf-keras tests)."""

from __future__ import annotations

from typing import Any


def tensorflow_read_into(monkeypatch: Any) -> list[int]:
    """For the rest of the test: the address of every new TensorFlow tensor that weightio
    reads a large value into (which the variable then takes over), in order."""
    from weightio.keras import assign

    addresses: list[int] = []
    original = assign._TensorMemory.__init__

    def spy(self: Any, tensor: Any, dtype: Any, *known: Any) -> None:
        original(self, tensor, dtype, *known)
        addresses.append(self.__array_interface__["data"][0])

    monkeypatch.setattr(assign._TensorMemory, "__init__", spy)
    return addresses


def taken_ahead(monkeypatch: Any) -> list[tuple[int, ...]]:
    """For the rest of the test: the shape of every value a first load takes from what it
    read ahead (``prefetch.ReadAhead``), in order."""
    from weightio.keras.prefetch import ReadAhead

    taken: list[tuple[int, ...]] = []
    take = ReadAhead.take

    def spy(self: Any, lazy: Any, dtype: Any) -> Any:
        array = take(self, lazy, dtype)
        if array is not None:
            taken.append(array.shape)
        return array

    monkeypatch.setattr(ReadAhead, "take", spy)
    return taken


def read_ahead(monkeypatch: Any) -> list[Any]:
    """For the rest of the test: the keys (dataset addresses, checkpoint keys) of every value a
    first load starts reading ahead (``prefetch.ReadAhead``), in order."""
    from weightio.keras.prefetch import ReadAhead

    keys: list[Any] = []
    init = ReadAhead.__init__

    def spy(self: Any, requests: Any, start: Any, allocate: Any) -> None:
        init(self, requests, start, allocate)
        keys.extend(key for key, _, _ in requests)

    monkeypatch.setattr(ReadAhead, "__init__", spy)
    return keys
