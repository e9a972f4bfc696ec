"""napari dock widgets: thin layers over the Qt-free science in plate/, gan/ and analysis/."""
