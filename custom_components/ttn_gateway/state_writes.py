"""Write-on-change for entities: a state is written only when it changed.

An entity says what its state is made of in ``_signature()``; calling
``async_write_if_changed()`` then writes the state only when that signature
differs from the one last written (any write, including Home Assistant's own
when the entity is added, records it: the hook is ``_async_write_ha_state``,
through which every write goes).
"""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity

_NOTHING_WRITTEN = object()


class WriteOnChange(Entity):
    """Mixin for entities that skip writes of an unchanged state."""

    _written_signature: object = _NOTHING_WRITTEN
    # The signature of the write under way, when the caller computed it.
    _known_signature: object = _NOTHING_WRITTEN

    def _signature(self) -> object:
        """What the written state is made of (value, availability, ...)."""
        raise NotImplementedError

    @callback
    def _async_write_ha_state(self) -> None:
        """Remember what is written, on every path that writes the state.

        (``async_write_ha_state`` itself is final in newer Home Assistant.)
        """
        known, self._known_signature = self._known_signature, _NOTHING_WRITTEN
        self._written_signature = (
            self._signature() if known is _NOTHING_WRITTEN else known
        )
        super()._async_write_ha_state()

    @callback
    def async_write_if_changed(self) -> bool:
        """Write the state if it changed since the last write; True if written."""
        if (signature := self._signature()) == self._written_signature:
            return False
        self.async_write_signature(signature)
        return True

    @callback
    def async_write_signature(self, signature: object) -> None:
        """Write the state, whose signature the caller has just computed."""
        self._known_signature = signature
        try:
            self.async_write_ha_state()
        finally:
            self._known_signature = _NOTHING_WRITTEN
