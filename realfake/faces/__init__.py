"""Stages faces@<source> and resize@<source>: detect, align and crop faces; training-size copies."""
