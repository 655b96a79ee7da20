"""The `privsynth` command: one module per subcommand, each adding its parser; main.py
builds the parser and turns user mistakes into one error line."""
