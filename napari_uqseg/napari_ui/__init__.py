"""napari dock widgets: thin Qt views over the torch-free client; every blocking call runs in a worker."""
