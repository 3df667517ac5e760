"""One module per ``edgectl`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
