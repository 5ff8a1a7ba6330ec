"""The toy layer: proves the layer directory is on the container's PYTHONPATH."""

LAYER_MARKER = "toy-layer"
