"""The package format and everything that makes or reads a package.

- format.py: the names the format is made of (writer and reader share them);
- writer.py: the deterministic, streaming ZIP writer (standard library only);
- contents.py: what goes into an export's package, from its versions;
- reuse.py: content keys, to reuse an identical stored package;
- reader/: the package reader an import starts with (ZIP safety, contents, versions, the
  model).

format.py, writer.py and reader/ import nothing from Django. Which ZIP entry paths are safe is
one rule for the writer, the reader and the catalog's artifacts: sparkexport/zip_paths.py.
"""
