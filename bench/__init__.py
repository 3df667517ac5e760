"""The bench: measurements and research code, run from the checkout as ``python -m bench.X``.

Not part of the product (nothing in ``edgectl`` or ``firmware_sim`` imports it): the daemon and
the pure core under load (``daemon_bench``, ``core_speed``, ``soak``, ``fleet``), the control
modes against the emulator (``hil_adaptive``), the SUMO matrix and the clairvoyant estimate
(``sumo_matrix``, ``sumo_oracle`` with :mod:`bench.oracle`), the scenarios they run
(``scenarios.build``), and ``run_all``, which runs the first ones and writes
``docs/benchmarks.md``.
"""
