r"""Studies behind the ``otgrad`` subcommands: each writes ``results.json`` and figures."""
