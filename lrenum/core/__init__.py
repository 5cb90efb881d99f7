"""The enumerator: region state, the split (hyperplanes, classify, vertices or LP arrangement,
assemble) and the layer-tree walk that streams regions to a sink."""
