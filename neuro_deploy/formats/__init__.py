"""File formats: netx HDF5 (ours and plain lava-dl), NIR written."""
