"""The names our package format is made of, shared by the writer and the reader (no Django)."""

PACKAGE_FORMAT = "sparkexport-package"
PACKAGE_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
VERSION_JSON_NAME = "version.json"
NEURON_ENTRY_NAME = "neuron.zip"
