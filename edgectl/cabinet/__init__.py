"""What the controller and the cabinet hardware share: channel states, device profiles and
register layouts. A pure leaf: imports nothing else of edgectl but :mod:`edgectl.errors` and
:mod:`edgectl.frozen`, so :mod:`firmware_sim` can depend on it alone.
"""
