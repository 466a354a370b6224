"""The package format and everything that makes or reads a package.

- format.py: the names the format is made of (writer and reader share them);
- paths.py: which ZIP entry paths are safe (writer and reader share the rule);
- writer.py: the deterministic, streaming ZIP writer (standard library only);
- contents.py: what goes into an export's package, from its versions;
- reuse.py: content keys, to reuse an identical stored package;
- reader/: the package reader an import starts with (ZIP safety, contents, the model).

format.py, paths.py, writer.py and reader/ import nothing from Django.
"""
