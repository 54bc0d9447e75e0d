"""The Docker Engine API (v1.41) over pyctr's store: `pyctr system service`. One module per
resource group; every handler calls the functions the CLI uses, in a worker thread."""
