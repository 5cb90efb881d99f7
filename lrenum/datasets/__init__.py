"""Region datasets: the HDF5 writer (a sink of the walk), reader and verifier."""
