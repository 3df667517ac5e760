"""Field devices behind one narrow async seam.

- :mod:`~edgectl.field.transport` — :class:`RegisterIO` (the seam), the one place foreign
  errors become :mod:`edgectl.errors`, argument checks;
- :mod:`~edgectl.field.modbus` — Modbus TCP and RTU through pymodbus;
- :mod:`~edgectl.field.memory` — ``MockTransport(handler)`` and the in-memory bank;
- :mod:`~edgectl.field.buses` — ``FieldBuses`` (shared serial lines, memory banks) and
  ``open_io``;
- :mod:`~edgectl.field.url` — device URLs;
- :mod:`~edgectl.field.device` — ``CabinetDevice``: its supervised task and the frozen
  ``DeviceReport`` it publishes after every read.

Register encoding is not here: it is the cabinet leaf's (:mod:`edgectl.cabinet.registers`),
shared with the emulator. Nothing in this package imports control, sync or the daemon.
"""
