"""Stage faces@<source>: detect, align and crop one face per raw image (MTCNN)."""
