from pyrunc.cli import entry

entry()
