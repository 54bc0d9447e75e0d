from pyrunc.cli.pause import FLAGS, USAGE, run_resume as run  # noqa: F401
