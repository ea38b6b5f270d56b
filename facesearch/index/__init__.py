"""Search backends behind one interface (``base.SearchIndex``, ``base.IndexStore``): FAISS in
memory and in a file, or a Milvus collection. ``spec`` names the kinds without loading any."""
