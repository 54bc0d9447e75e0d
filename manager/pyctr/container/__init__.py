"""pyctr's containers: the store of container records, their creation from images, and their
lifecycle through a pyrunc-shim monitor per running container (conmon's command line); what reads
their rootfs (diff, cp, commit, export) and the --format templates."""
