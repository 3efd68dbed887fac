"""Shared test configuration: one torch thread, a non-interactive matplotlib backend."""

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
