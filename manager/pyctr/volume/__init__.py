"""pyctr's named volumes (Docker's local driver layout): the store, copy-up from images."""
