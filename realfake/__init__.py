"""realfake: is this face photo real or generated?"""

__version__ = "0.1.0"
