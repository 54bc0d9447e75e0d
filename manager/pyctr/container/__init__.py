"""pyctr's containers: the store, their rootfs and what reads it (diff, cp, commit, export), formats."""
