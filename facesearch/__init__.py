"""facesearch: a face search engine.

The library is usable on its own; the ``facesearch`` command (``facesearch.cli``) is a thin
layer over :class:`facesearch.gallery.engine.Gallery`.
"""

__version__ = "0.1.0"

UNKNOWN = "n000000"
"""The answer for "no correspondence": the best match scored below the gallery's threshold."""
