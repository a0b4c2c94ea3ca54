"""The command line. Importing the library never imports this package."""
