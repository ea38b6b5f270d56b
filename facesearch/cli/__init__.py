"""The ``facesearch`` command (installed as ``facesearch.cli``): parses, calls the library, prints."""
