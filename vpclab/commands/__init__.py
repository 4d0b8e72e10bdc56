"""One module per CLI verb: `add_parser(subparsers)` and `main(args) -> exit code`."""
