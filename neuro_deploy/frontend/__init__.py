"""Front ends: a trained PyTorch network captured into the graph IR; NIR graphs read."""
