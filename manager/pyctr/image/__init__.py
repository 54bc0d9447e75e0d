"""Images: references, registry client, content store, layers (overlay2), archives, bundles."""
