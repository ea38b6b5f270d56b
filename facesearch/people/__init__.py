"""People nobody has named yet: grouping unnamed faces into people (``clustering``)."""
