"""Analysis of trained leaky rate networks (the mRNNTorch toolkit's questions).

:class:`Linearization` gives analytic Jacobians of a region subset (with respect to states
or rates, inputs and the excluded regions), their eigendecomposition and a first-order
Taylor model; :func:`find_fixed_points` finds fixed and slow points from many initial
states at once; :func:`flow_field` maps a subset's velocity on a 2-D plane (drawn by
:func:`skneuro.plotting.plot_flow_field`). All read the model once as float64 copies and
leave it untouched.
"""

from ._fixed_points import FixedPoints, find_fixed_points
from ._flow import FlowField, flow_field
from ._linearization import Linearization

__all__ = ["FixedPoints", "FlowField", "Linearization", "find_fixed_points", "flow_field"]
