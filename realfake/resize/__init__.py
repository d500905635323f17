"""Stage `resize@<source>`: training-size images from the aligned crops (params.yaml section `resize`)."""
