"""Shared by every stage: params, errors, logging, atomic writes, image I/O, vocabularies, tables."""
