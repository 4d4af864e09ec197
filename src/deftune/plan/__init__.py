"""The plan before training: every method's memory and time estimated (`compare`), optionally measured for a few
steps in fresh processes (`measure`), and checked against the guide's claims; `deftune plan` is deftune.cli.plan."""
