"""The centre's side of the contract: pure planners a city runs in its centre (no I/O, no
clock), used by the centre-side tools (:mod:`edgectl.commands`) and the SUMO bench.

- :mod:`edgectl.centre.route`: a green wave along a route — the ``priority`` /
  ``priority_cancel`` requests for the junctions ahead of an emergency vehicle, from its
  positions.
"""
